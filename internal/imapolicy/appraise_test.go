package imapolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"hash/maphash"
	"math/big"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
)

// entry is a non-violation IMA entry of a file with the given content.
func entry(path, content string) appraise.IMAEntry {
	sum := sha256.Sum256([]byte(content))
	th := sha1.Sum([]byte(path + content))
	return appraise.IMAEntry{PCR: 10, TemplateHash: th[:], Template: appraise.TemplateIMANG, FileHashAlg: "sha256", FileHash: sum[:], Path: path}
}

func digestOfContent(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// signer is an IMA signing key with its certificate, as a distribution
// would sign files with evmctl.
type signer struct {
	key  crypto.Signer
	cert *x509.Certificate
	pem  string
	// keyID is evmctl's: the last 4 bytes of the SHA-1 of the public key
	// (the subjectPublicKey bit string's contents), computed here from
	// the key itself, apart from the package.
	keyID uint32
}

func newSigner(t testing.TB, kind string) *signer {
	t.Helper()
	var key crypto.Signer
	var pubBits []byte
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key, pubBits = k, x509.MarshalPKCS1PublicKey(&k.PublicKey)
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := k.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		key, pubBits = k, ek.Bytes()
	}
	sum := sha1.Sum(pubBits)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(sum[:8]), Subject: pkix.Name{CommonName: "IMA " + kind + " signing key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: sum[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{
		key: key, cert: cert, keyID: binary.BigEndian.Uint32(sum[16:]),
		pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// sign returns the security.ima signature evmctl writes for a file digest:
// signature_v2_hdr (type 3, version 2, hash algorithm 4 = SHA-256, key id,
// big-endian size) then the PKCS#1 v1.5 or ASN.1 ECDSA signature.
func (s *signer) sign(t testing.TB, digest []byte) []byte {
	t.Helper()
	sig, err := s.key.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{0x03, 0x02, 0x04}
	hdr = binary.BigEndian.AppendUint32(hdr, s.keyID)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(sig)))
	return append(hdr, sig...)
}

// signed is an ima-sig entry of a file signed by s.
func (s *signer) signed(t testing.TB, path, content string) appraise.IMAEntry {
	e := entry(path, content)
	e.Template = appraise.TemplateIMASig
	e.Signature = s.sign(t, e.FileHash)
	return e
}

// boot is a set of quoted PCR values with IMA's boot_aggregate over them.
func boot() (appraise.PCRs, appraise.IMAEntry) {
	pcrs := appraise.PCRs{"SHA256": {}}
	h := sha256.New()
	for i := range 10 {
		v := sha256.Sum256([]byte{byte(i)})
		pcrs["SHA256"][i] = v[:]
		h.Write(v[:])
	}
	e := entry("boot_aggregate", "")
	e.FileHash = h.Sum(nil)
	return pcrs, e
}

// wantFault appraises one entry: it must have no fault when want is "",
// else exactly one, named want, which it returns.
func wantFault(t *testing.T, c *Compiled, e appraise.IMAEntry, pcrs appraise.PCRs, want string) appraise.Fault {
	t.Helper()
	faults := c.Appraise([]appraise.IMAEntry{e}, pcrs)
	if want == "" {
		if len(faults) != 0 {
			t.Fatalf("faults %+v, want none", faults)
		}
		return appraise.Fault{}
	}
	if len(faults) != 1 || faults[0].Name != want {
		t.Fatalf("faults %+v, want one %s", faults, want)
	}
	return faults[0]
}

func mustCompile(t testing.TB, doc map[string]any) *Compiled {
	t.Helper()
	doc["meta"] = map[string]any{"version": 1}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return loadPolicy(t, b)
}

func TestAppraise(t *testing.T) {
	rsaKey, ecKey, untrusted := newSigner(t, "rsa"), newSigner(t, "ecdsa"), newSigner(t, "ecdsa")
	pcrs, aggregate := boot()
	wrongAggregate := aggregate
	wrongAggregate.FileHash = make([]byte, 32)
	policy := mustCompile(t, map[string]any{
		"digests": map[string][]string{
			"/usr/bin/bash": {digestOfContent("bash 5.2"), digestOfContent("bash 5.1")},
			"/etc/signed":   {digestOfContent("listed")},
		},
		"excludes":          []string{"^/tmp/.*", "/var/log"},
		"keyrings":          map[string][]string{".ima": {digestOfContent("ima key")}},
		"ima_buf":           map[string][]string{"kexec-cmdline": {digestOfContent("ro quiet")}},
		"verification_keys": []string{rsaKey.pem, ecKey.pem},
	})
	violation := func(path string) appraise.IMAEntry {
		e := entry(path, "")
		e.TemplateHash, e.FileHash = make([]byte, 20), make([]byte, 32)
		return e
	}
	buf := func(name, content string) appraise.IMAEntry {
		e := entry(name, content)
		e.Template, e.Buffer = appraise.TemplateIMABuf, []byte(content)
		return e
	}
	tampered := rsaKey.signed(t, "/usr/sbin/tool", "tool")
	tampered.Signature[len(tampered.Signature)-1] ^= 1
	otherDigest := ecKey.signed(t, "/usr/sbin/tool", "tool")
	otherDigest.FileHash = entry("/usr/sbin/tool", "tool v2").FileHash
	badSigListed := untrusted.signed(t, "/etc/signed", "listed")
	modsig := entry("/usr/lib/modules/x.ko", "module")
	modsig.Template, modsig.ModsigHashAlg, modsig.ModsigHash, modsig.Modsig = appraise.TemplateIMAModsig, "sha256", modsig.FileHash, []byte{0x30, 0x82}
	sha1Sig := rsaKey.signed(t, "/usr/sbin/tool", "tool")
	sha1Sig.Signature[2] = 2 // says SHA-1, the file was measured with SHA-256

	for _, tt := range []struct {
		name  string
		entry appraise.IMAEntry
		fault string
	}{
		{"a listed file with an allowed digest passes", entry("/usr/bin/bash", "bash 5.1"), ""},
		{"a listed file with another allowed digest passes", entry("/usr/bin/bash", "bash 5.2"), ""},
		{"a listed file with a digest the policy does not allow is a digest mismatch", entry("/usr/bin/bash", "bash 6 (trojaned)"), ImaPolicyDigestMismatch},
		{"a file outside the policy is not allowed", entry("/usr/bin/nc", "netcat"), ImaPolicyFileNotAllowed},
		{"an excluded path passes whatever its digest", entry("/tmp/build/a.out", "anything"), ""},
		{"an exclude matches the whole path, not a part of it", entry("/var/log/syslog", "x"), ImaPolicyFileNotAllowed},
		{"an exclude matching the whole path passes", entry("/var/log", "x"), ""},
		{"a violation on a path that is not excluded is a fault", violation("/etc/passwd"), ImaPolicyViolation},
		{"a violation on an excluded path passes", violation("/tmp/scratch"), ""},
		{"the boot_aggregate of the quoted PCRs passes", aggregate, ""},
		{"a boot_aggregate that is not the hash of the quoted PCRs is a fault", wrongAggregate, ImaPolicyBootAggregateMismatch},
		{"an allowed keyring entry passes", buf(".ima", "ima key"), ""},
		{"a key added to a keyring the policy does not allow is a fault", buf(".ima", "rogue key"), ImaPolicyBufferNotAllowed},
		{"an allowed kernel command line passes", buf("kexec-cmdline", "ro quiet"), ""},
		{"another kernel command line is a fault", buf("kexec-cmdline", "ro init=/bin/sh"), ImaPolicyBufferNotAllowed},
		{"an unknown ima-buf entry is a fault", buf("selinux-state", "enforcing=0"), ImaPolicyBufferNotAllowed},
		{"a file signed by a trusted RSA key passes without a digest", rsaKey.signed(t, "/usr/sbin/tool", "tool"), ""},
		{"a file signed by a trusted ECDSA key passes without a digest", ecKey.signed(t, "/opt/kata/bin/kata-runtime", "kata"), ""},
		{"a file signed by an untrusted key is a fault", untrusted.signed(t, "/usr/sbin/tool", "tool"), ImaPolicySignatureUntrustedKey},
		{"a signature that does not verify is a fault", tampered, ImaPolicySignatureInvalid},
		{"a signature over another digest is a fault", otherDigest, ImaPolicySignatureInvalid},
		{"a signature over a digest of another algorithm is a fault", sha1Sig, ImaPolicySignatureInvalid},
		{"a listed file with an allowed digest passes whoever signed it", badSigListed, ""},
		{"a listed file with another digest passes when a trusted key signed it", rsaKey.signed(t, "/usr/bin/bash", "bash 5.3 (vendor update)"), ""},
		{"a listed file with another digest signed by an untrusted key is a fault", untrusted.signed(t, "/usr/bin/bash", "bash 5.3"), ImaPolicySignatureUntrustedKey},
		{"a file with a modsig that does not decode and no allowed digest is a fault", modsig, ImaPolicySignatureInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := wantFault(t, policy, tt.entry, pcrs, tt.fault)
			if tt.fault == "" {
				return
			}
			if f.File != tt.entry.Path || !strings.Contains(f.Description, tt.entry.Path) {
				t.Errorf("the fault does not name the file %q: %+v", tt.entry.Path, f)
			}
			if !tt.entry.Violation() && f.Actual != "sha256:"+hex.EncodeToString(tt.entry.FileHash) {
				t.Errorf("the fault's measured digest is %q, want the entry's", f.Actual)
			}
		})
	}
	t.Run("a listed file's fault gives the allowed digests", func(t *testing.T) {
		f := policy.Appraise([]appraise.IMAEntry{entry("/usr/bin/bash", "bash 6")}, pcrs)[0]
		if f.Expected != digestOfContent("bash 5.2")+","+digestOfContent("bash 5.1") && f.Expected != digestOfContent("bash 5.1")+","+digestOfContent("bash 5.2") {
			t.Errorf("expected %q, want both allowed digests", f.Expected)
		}
	})
	t.Run("a modsig fault says the appended signature does not decode", func(t *testing.T) {
		f := policy.Appraise([]appraise.IMAEntry{modsig}, pcrs)[0]
		if !strings.Contains(f.Description, "appended signature (modsig) does not decode") {
			t.Errorf("description %q", f.Description)
		}
	})
}

func TestAppraiseSettings(t *testing.T) {
	pcrs, aggregate := boot()
	wrong := aggregate
	wrong.FileHash = make([]byte, 32)
	sha1Entry := entry("/usr/bin/a", "a")
	sha1Entry.FileHashAlg, sha1Entry.FileHash = "sha1", sha1Entry.TemplateHash
	for _, tt := range []struct {
		name    string
		doc     map[string]any
		entries []appraise.IMAEntry
		pcrs    appraise.PCRs
		fault   string
	}{
		{"boot_aggregate false does not check the entry", map[string]any{"boot_aggregate": false}, []appraise.IMAEntry{wrong}, pcrs, ""},
		{"a boot_aggregate whose bank the quote lacks is a fault", map[string]any{}, []appraise.IMAEntry{aggregate}, appraise.PCRs{"SHA384": pcrs["SHA256"]}, ImaPolicyBootAggregateMismatch},
		{"log_hash_alg refuses a digest of another algorithm", map[string]any{"log_hash_alg": "sha256", "digests": map[string][]string{"/usr/bin/a": {"sha1:" + hex.EncodeToString(sha1Entry.FileHash)}}},
			[]appraise.IMAEntry{sha1Entry}, pcrs, ImaPolicyDigestMismatch},
		{"without log_hash_alg a listed sha1 digest passes", map[string]any{"digests": map[string][]string{"/usr/bin/a": {"sha1:" + hex.EncodeToString(sha1Entry.FileHash)}}},
			[]appraise.IMAEntry{sha1Entry}, pcrs, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			faults := mustCompile(t, tt.doc).Appraise(tt.entries, tt.pcrs)
			if (tt.fault == "" && len(faults) != 0) || (tt.fault != "" && (len(faults) != 1 || faults[0].Name != tt.fault)) {
				t.Fatalf("faults %+v, want %q", faults, tt.fault)
			}
		})
	}
}

func TestSHA1BootAggregateCoversPCRs0To7(t *testing.T) {
	pcrs := appraise.PCRs{"SHA1": {}}
	h := sha1.New()
	for i := range 10 {
		v := sha1.Sum([]byte{byte(i)})
		pcrs["SHA1"][i] = v[:]
		if i < 8 {
			h.Write(v[:])
		}
	}
	got, err := BootAggregate("sha1", pcrs)
	if err != nil || hex.EncodeToString(got) != hex.EncodeToString(h.Sum(nil)) {
		t.Fatalf("BootAggregate(sha1) = %x, %v; want the SHA-1 of PCRs 0-7", got, err)
	}
}

// Faults beyond MaxFaults are counted, not listed; a later appraisal of
// the same boot reads only the new entries and keeps the earlier faults.
func TestProgress(t *testing.T) {
	c := mustCompile(t, map[string]any{"digests": map[string][]string{"/ok": {digestOfContent("ok")}}})
	var entries []appraise.IMAEntry
	for i := range MaxFaults + 5 {
		entries = append(entries, entry("/bad/"+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)}), "x"))
	}
	p := c.Continue(Progress{}, entries, nil)
	faults := p.Faults()
	if len(faults) != MaxFaults+1 || faults[MaxFaults].Name != ImaPolicyFaultsOmitted || p.Omitted != 5 {
		t.Fatalf("%d faults, last %+v, omitted %d; want %d listed and 5 counted", len(faults), faults[len(faults)-1], p.Omitted, MaxFaults)
	}
	more := append(entries[:len(entries):len(entries)], entry("/ok", "ok"))
	q := c.Continue(p, more, nil)
	if q.Entries != len(more) || q.Omitted != 5 || len(q.Found) != MaxFaults {
		t.Fatalf("continued progress %d entries, %d omitted, %d found", q.Entries, q.Omitted, len(q.Found))
	}
	stale := Progress{Policy: "sha256:other", Entries: len(entries)}
	if r := c.Continue(stale, entries, nil); r.Omitted != 5 {
		t.Fatalf("a progress of another policy was trusted: %+v", r.Omitted)
	}
}

// A signed file seen on many hosts costs one verification: once verified,
// the signature is not checked with the key again.
func TestVerifiedSignaturesAreRemembered(t *testing.T) {
	s := newSigner(t, "rsa")
	c := mustCompile(t, map[string]any{"verification_keys": []string{s.pem}})
	e := s.signed(t, "/usr/bin/signed", "signed")
	if f := c.Appraise([]appraise.IMAEntry{e}, nil); len(f) != 0 {
		t.Fatal(f)
	}
	// Swap the trusted key for another with the same id: a verification
	// would now fail, a remembered one does not.
	other := newSigner(t, "rsa")
	k, err := newVerificationKey(other.cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	c.keys[s.keyID] = []*verificationKey{k}
	if f := c.Appraise([]appraise.IMAEntry{e}, nil); len(f) != 0 {
		t.Fatalf("the remembered signature was verified again: %+v", f)
	}
	e2 := s.signed(t, "/usr/bin/signed2", "signed 2")
	if f := c.Appraise([]appraise.IMAEntry{e2}, nil); len(f) != 1 || f[0].Name != ImaPolicySignatureInvalid {
		t.Fatalf("a new signature was not verified: %+v", f)
	}
}

func TestAppraiseAllocatesNothingForAllowedEntries(t *testing.T) {
	doc := map[string][]string{}
	var entries []appraise.IMAEntry
	for i := range 10 {
		e := entry("/usr/lib/lib"+hex.EncodeToString([]byte{byte(i)})+".so", "lib")
		doc[e.Path] = []string{digestOfContent("lib")}
		entries = append(entries, e)
	}
	c := mustCompile(t, map[string]any{"digests": doc, "excludes": []string{"^/tmp/.*"}})
	if n := testing.AllocsPerRun(100, func() {
		if c.Appraise(entries, nil) != nil {
			t.Fatal("faults")
		}
	}); n != 0 {
		t.Errorf("Appraise of 10 allowed entries allocates %v times, want 0", n)
	}
}

// Two names with the same 64-bit hash (too rare to meet by chance, so
// made here by hand) are both found: the second from the collide map.
func TestNamesWithTheSameHashAreBothFound(t *testing.T) {
	a, b := entry("/usr/bin/a", "a"), entry("/usr/bin/b", "b")
	c := mustCompile(t, map[string]any{"digests": map[string][]string{
		a.Path: {digestOfContent("a")}, b.Path: {digestOfContent("b")},
	}})
	spB, ok := c.lookup(&c.files, b.Path)
	if !ok {
		t.Fatal("b not found")
	}
	// b's hash now leads to a's record; b itself is in collide.
	c.files.byHash[maphash.String(c.seed, b.Path)] = c.files.byHash[maphash.String(c.seed, a.Path)]
	c.files.collide = map[string]span{b.Path: spB}
	if f := c.Appraise([]appraise.IMAEntry{a, b}, nil); len(f) != 0 {
		t.Fatalf("faults %+v", f)
	}
	if f := c.Appraise([]appraise.IMAEntry{entry(b.Path, "a")}, nil); len(f) != 1 || f[0].Name != ImaPolicyDigestMismatch {
		t.Fatalf("b with a's digest: faults %+v", f)
	}
}

// One Compiled serves every host: appraisals run at once, signed files
// included, ima-sig and appended (their verifications are remembered as
// they run).
func TestACompiledPolicyIsSharedByConcurrentAppraisals(t *testing.T) {
	s := newSigner(t, "ecdsa")
	c := mustCompile(t, map[string]any{
		"digests":           map[string][]string{"/usr/bin/a": {digestOfContent("a")}},
		"verification_keys": []string{s.pem},
	})
	var entries []appraise.IMAEntry
	for i := range 20 {
		entries = append(entries, s.signed(t, "/opt/signed/"+hex.EncodeToString([]byte{byte(i)}), "content"+string(rune('a'+i))))
	}
	for i := range 10 {
		entries = append(entries, s.modsigned(t, "/usr/lib/modules/"+hex.EncodeToString([]byte{byte(i)})+".ko", "module"+string(rune('a'+i)), modsigOpts{keyID: i%2 == 0}))
	}
	entries = append(entries, entry("/usr/bin/a", "a"), entry("/usr/bin/b", "b"))
	errs := make(chan []appraise.Fault, 8)
	for range 8 {
		go func() { errs <- c.Appraise(entries, nil) }()
	}
	for range 8 {
		if f := <-errs; len(f) != 1 || f[0].File != "/usr/bin/b" {
			t.Errorf("faults %+v, want only /usr/bin/b's", f)
		}
	}
}
