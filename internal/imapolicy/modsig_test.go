package imapolicy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

// A tiny DER encoder of SignedData for the tests, independent of the
// parser: it builds what sign-file and openssl cms write.

var (
	testOIDSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	testOIDMD5       = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	testOIDSHA256RSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	testOIDECDSA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

func mustDER(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlv encodes a constructed value of a class and tag around parts.
func tlv(t testing.TB, class, tag int, parts ...[]byte) []byte {
	t.Helper()
	return mustDER(t, asn1.RawValue{Class: class, Tag: tag, IsCompound: true, Bytes: bytes.Join(parts, nil)})
}

func seq(t testing.TB, parts ...[]byte) []byte {
	return tlv(t, asn1.ClassUniversal, asn1.TagSequence, parts...)
}

func set(t testing.TB, parts ...[]byte) []byte {
	return tlv(t, asn1.ClassUniversal, asn1.TagSet, parts...)
}

// modsigOpts choose how the test encoder signs.
type modsigOpts struct {
	keyID       bool // name the signer by subject key identifier (version 3)
	attrs       bool // sign authenticated attributes
	attrsAside  bool // carry authenticated attributes but sign the content digest
	pss         bool // RSASSA-PSS instead of PKCS#1 v1.5
	digestAlg   asn1.ObjectIdentifier
	sigAlg      asn1.ObjectIdentifier
	signers     int  // SignerInfos (default 1)
	withContent bool // embed the content (not detached)
}

// modsig returns an appended signature of content by s and the d-modsig
// the kernel would record for it.
func (s *signer) modsig(t testing.TB, content []byte, o modsigOpts) (blob, dModsig []byte) {
	t.Helper()
	sum := sha256.Sum256(content)
	digestAlg := seq(t, mustDER(t, testOIDSHA256), asn1.NullBytes)
	if o.digestAlg != nil {
		digestAlg = seq(t, mustDER(t, o.digestAlg), asn1.NullBytes)
	}
	version, sid := 1, seq(t, s.cert.RawIssuer, mustDER(t, s.cert.SerialNumber))
	if o.keyID {
		version, sid = 3, mustDER(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: s.cert.SubjectKeyId})
	}
	signed, attrs := sum[:], []byte(nil)
	if o.attrs {
		body := bytes.Join([][]byte{
			seq(t, mustDER(t, oidContentType), set(t, mustDER(t, oidData))),
			seq(t, mustDER(t, oidMessageDigest), set(t, mustDER(t, sum[:]))),
		}, nil)
		d := sha256.Sum256(set(t, body))
		signed, attrs = d[:], tlv(t, asn1.ClassContextSpecific, 0, body)
		if o.attrsAside {
			signed = sum[:]
		}
	}
	var sig, sigAlg []byte
	var err error
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		if o.pss {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, signed, &rsa.PSSOptions{SaltLength: 32})
			sha256Alg := seq(t, mustDER(t, testOIDSHA256), asn1.NullBytes)
			sigAlg = seq(t, mustDER(t, oidRSASSAPSS), seq(t,
				tlv(t, asn1.ClassContextSpecific, 0, sha256Alg),
				tlv(t, asn1.ClassContextSpecific, 1, seq(t, mustDER(t, oidMGF1), sha256Alg)),
				tlv(t, asn1.ClassContextSpecific, 2, mustDER(t, 32))))
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, signed)
			sigAlg = seq(t, mustDER(t, oidRSAEncryption), asn1.NullBytes)
		}
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, signed)
		sigAlg = seq(t, mustDER(t, testOIDECDSA256))
	}
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case o.sigAlg.Equal(testOIDECDSA256):
		sigAlg = seq(t, mustDER(t, o.sigAlg))
	case o.sigAlg != nil:
		sigAlg = seq(t, mustDER(t, o.sigAlg), asn1.NullBytes)
	}
	info := seq(t, mustDER(t, version), sid, digestAlg, attrs, sigAlg, mustDER(t, sig))
	infos := [][]byte{info}
	for range o.signers - 1 {
		infos = append(infos, info)
	}
	encap := seq(t, mustDER(t, oidData))
	if o.withContent {
		encap = seq(t, mustDER(t, oidData), tlv(t, asn1.ClassContextSpecific, 0, mustDER(t, content)))
	}
	sd := seq(t, mustDER(t, version), set(t, digestAlg), encap, set(t, infos...))
	return seq(t, mustDER(t, oidSignedData), tlv(t, asn1.ClassContextSpecific, 0, sd)), signed
}

// modsigned is an ima-modsig entry of a module signed by s.
func (s *signer) modsigned(t testing.TB, path, content string, o modsigOpts) appraise.IMAEntry {
	t.Helper()
	e := entry(path, content+"~Module signature appended~\n")
	e.Template, e.Signature = appraise.TemplateIMAModsig, []byte{}
	e.ModsigHashAlg = "sha256"
	e.Modsig, e.ModsigHash = s.modsig(t, []byte(content), o)
	return e
}

// signV3 returns an IMA signature version 3 of a SHA-256 file digest:
// over the SHA-256 of struct ima_file_id {type 3, algorithm 4, digest}.
func (s *signer) signV3(t testing.TB, fileDigest []byte) []byte {
	t.Helper()
	id := sha256.Sum256(append([]byte{0x03, 0x04}, fileDigest...))
	sig := s.sign(t, id[:])
	sig[1] = 3
	return sig
}

func TestAppendedSignatures(t *testing.T) {
	rsaKey, ecKey, untrusted := newSigner(t, "rsa"), newSigner(t, "ecdsa"), newSigner(t, "rsa")
	policy := mustCompile(t, map[string]any{
		"digests":           map[string][]string{"/usr/lib/modules/listed.ko": {digestOfContent("listed.ko~Module signature appended~\n")}},
		"verification_keys": []string{rsaKey.pem, ecKey.pem},
	})
	const mod = "/usr/lib/modules/6.1/kernel/drivers/x.ko"
	tamperedDigest := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{})
	tamperedDigest.ModsigHash[0] ^= 1
	tamperedSig := ecKey.modsigned(t, mod, "x.ko", modsigOpts{})
	tamperedSig.Modsig[len(tamperedSig.Modsig)-3] ^= 1
	tamperedAttrs := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{attrs: true})
	tamperedAttrs.ModsigHash[0] ^= 1
	truncated := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{})
	truncated.Modsig = truncated.Modsig[:len(truncated.Modsig)/2]
	otherAlg := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{})
	otherAlg.ModsigHashAlg, otherAlg.ModsigHash = "sha1", otherAlg.ModsigHash[:20]
	wrongScheme := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{sigAlg: testOIDECDSA256})
	garbageListed := entry("/usr/lib/modules/listed.ko", "listed.ko~Module signature appended~\n")
	garbageListed.Template, garbageListed.ModsigHashAlg, garbageListed.ModsigHash, garbageListed.Modsig = appraise.TemplateIMAModsig, "sha256", garbageListed.FileHash, []byte{0x30, 0x82}
	untrustedSigTrustedModsig := rsaKey.modsigned(t, mod, "x.ko", modsigOpts{})
	untrustedSigTrustedModsig.Signature = untrusted.sign(t, untrustedSigTrustedModsig.FileHash)
	for _, tt := range []struct {
		name  string
		entry appraise.IMAEntry
		fault string
	}{
		{"a module signed by a trusted RSA key passes without a digest", rsaKey.modsigned(t, mod, "x.ko", modsigOpts{}), ""},
		{"a module signed by a trusted ECDSA key passes without a digest", ecKey.modsigned(t, mod, "x.ko", modsigOpts{}), ""},
		{"a signer named by its subject key identifier passes", rsaKey.modsigned(t, mod, "x.ko", modsigOpts{keyID: true}), ""},
		{"a signature over authenticated attributes passes", ecKey.modsigned(t, mod, "x.ko", modsigOpts{attrs: true, keyID: true}), ""},
		{"an RSASSA-PSS signature passes", rsaKey.modsigned(t, mod, "x.ko", modsigOpts{pss: true}), ""},
		{"a module signed by an untrusted key is a fault", untrusted.modsigned(t, mod, "x.ko", modsigOpts{}), ImaPolicySignatureUntrustedKey},
		{"a module signed by an untrusted key named by its key identifier is a fault", untrusted.modsigned(t, mod, "x.ko", modsigOpts{keyID: true}), ImaPolicySignatureUntrustedKey},
		{"a d-modsig the signature is not over is a fault", tamperedDigest, ImaPolicySignatureInvalid},
		{"a tampered signature is a fault", tamperedSig, ImaPolicySignatureInvalid},
		{"a d-modsig that is not the digest of the authenticated attributes is a fault", tamperedAttrs, ImaPolicySignatureInvalid},
		{"a d-modsig that is not the digest of the authenticated attributes is a fault even when signed", rsaKey.modsigned(t, mod, "x.ko", modsigOpts{attrs: true, attrsAside: true}), ImaPolicySignatureInvalid},
		{"a truncated modsig is a fault", truncated, ImaPolicySignatureInvalid},
		{"a d-modsig of another algorithm than the signature's is a fault", otherAlg, ImaPolicySignatureInvalid},
		{"an ECDSA algorithm naming an RSA key is a fault", wrongScheme, ImaPolicySignatureInvalid},
		{"a listed module with an allowed digest passes whatever its modsig", garbageListed, ""},
		{"a module whose ima-sig key is untrusted passes on its trusted modsig", untrustedSigTrustedModsig, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := wantFault(t, policy, tt.entry, nil, tt.fault)
			if tt.fault != "" && (f.File != tt.entry.Path || !strings.Contains(f.Description, "appended signature")) {
				t.Errorf("the fault does not name the file and its appended signature: %+v", f)
			}
		})
	}
	t.Run("an untrusted signer's fault names it", func(t *testing.T) {
		f := policy.Appraise([]appraise.IMAEntry{untrusted.modsigned(t, mod, "x.ko", modsigOpts{})}, nil)[0]
		if !strings.Contains(f.Description, "IMA rsa signing key") || !strings.Contains(f.Description, untrusted.cert.SerialNumber.Text(16)) {
			t.Errorf("description %q does not name the issuer and serial", f.Description)
		}
	})
}

// The fixtures of testdata/modsig (see its README): made by openssl, and
// the signature of a real Debian kernel module.
func TestAppendedSignaturesOfTestdata(t *testing.T) {
	dir := filepath.Join("testdata", "modsig")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	policy := mustCompile(t, map[string]any{"verification_keys": []string{string(read("rsa.crt")), string(read("ec.crt")), string(read("debian-kernel-key.crt"))}})
	module := sha256.Sum256(read("module.bin"))
	attrsDigest, err := hex.DecodeString(strings.TrimSpace(string(read("rsa-attrs.d-modsig"))))
	if err != nil {
		t.Fatal(err)
	}
	// debian-efivarfs.digests: "d-ng sha256:<hex>" and "d-modsig sha256:<hex>".
	debian := map[string][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(string(read("debian-efivarfs.digests"))), "\n") {
		name, d, _ := strings.Cut(line, " sha256:")
		if debian[name], err = hex.DecodeString(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, file string
		dModsig    []byte
		fault      string
		tamper     bool
	}{
		{"sign-file's RSA signature without attributes passes", "rsa-noattr.p7s", module[:], "", false},
		{"an RSA signature naming the key by its identifier passes", "rsa-keyid.p7s", module[:], "", false},
		{"an ECDSA signature passes", "ec-noattr.p7s", module[:], "", false},
		{"an RSASSA-PSS signature with openssl's maximal salt passes", "rsa-pss.p7s", module[:], "", false},
		{"a signature over openssl's authenticated attributes passes", "rsa-attrs.p7s", attrsDigest, "", false},
		{"a signature by an untrusted key is a fault", "untrusted-noattr.p7s", module[:], ImaPolicySignatureUntrustedKey, false},
		{"an RSA signature over another digest is a fault", "rsa-noattr.p7s", module[:], ImaPolicySignatureInvalid, true},
		{"an ECDSA signature over another digest is a fault", "ec-noattr.p7s", module[:], ImaPolicySignatureInvalid, true},
		{"authenticated attributes of another digest are a fault", "rsa-attrs.p7s", attrsDigest, ImaPolicySignatureInvalid, true},
		{"a real Debian module's signature by its kernel's build key passes", "debian-efivarfs.p7s", debian["d-modsig"], "", false},
		{"a real Debian module's signature over another digest is a fault", "debian-efivarfs.p7s", debian["d-modsig"], ImaPolicySignatureInvalid, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := entry("/usr/lib/modules/fixture.ko", tt.file)
			e.Template, e.Signature, e.ModsigHashAlg = appraise.TemplateIMAModsig, []byte{}, "sha256"
			e.Modsig, e.ModsigHash = read(tt.file), bytes.Clone(tt.dModsig)
			if tt.tamper {
				e.ModsigHash[len(e.ModsigHash)-1] ^= 0x80
			}
			wantFault(t, policy, e, nil, tt.fault)
		})
	}
}

// The parser refuses what the kernel does not take for a module
// signature, and anything cut short or extended, without panicking.
func TestParseModsigRefuses(t *testing.T) {
	s := newSigner(t, "rsa")
	content := []byte("module")
	valid, _ := s.modsig(t, content, modsigOpts{})
	if _, err := parseModsig(valid); err != nil {
		t.Fatalf("the valid message does not parse: %v", err)
	}
	build := func(o modsigOpts) []byte {
		b, _ := s.modsig(t, content, o)
		return b
	}
	indefinite := append([]byte{0x30, 0x80}, valid[4:]...) // BER: an indefinite length
	indefinite = append(indefinite, 0, 0)
	for _, tt := range []struct {
		name string
		blob []byte
		want string
	}{
		{"an empty field", nil, "missing"},
		{"a message with a trailing byte", append(bytes.Clone(valid), 0), "after its end"},
		{"a BER indefinite length", indefinite, "indefinite"},
		{"two signers", build(modsigOpts{signers: 2}), "more than one signer"},
		{"an embedded content", build(modsigOpts{withContent: true}), "detached"},
		{"an MD5 digest", build(modsigOpts{digestAlg: testOIDMD5}), "not supported"},
		{"sha256WithRSAEncryption, which the kernel refuses", build(modsigOpts{sigAlg: testOIDSHA256RSA}), "not supported"},
		{"a message larger than the bound", append(bytes.Clone(valid), make([]byte, maxModsigBytes)...), "more than"},
	} {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := parseModsig(tt.blob)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
	t.Run("refuses every truncation of valid messages", func(t *testing.T) {
		for _, b := range [][]byte{valid, build(modsigOpts{attrs: true, keyID: true}), build(modsigOpts{pss: true})} {
			for n := range len(b) {
				if _, err := parseModsig(b[:n]); err == nil {
					t.Fatalf("the first %d of %d bytes parse", n, len(b))
				}
			}
		}
	})
	t.Run("refuses a signer info version that does not match the signed data's", func(t *testing.T) {
		b := build(modsigOpts{keyID: true})
		// The signed data's version is the first INTEGER 3 (02 01 03).
		i := bytes.Index(b, []byte{0x02, 0x01, 0x03})
		b[i+2] = 1
		if _, err := parseModsig(b); err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("error %v, want a version mismatch", err)
		}
	})
}

func TestSignatureVersion3(t *testing.T) {
	rsaKey, ecKey, untrusted := newSigner(t, "rsa"), newSigner(t, "ecdsa"), newSigner(t, "ecdsa")
	policy := mustCompile(t, map[string]any{"verification_keys": []string{rsaKey.pem, ecKey.pem}})
	v3 := func(s *signer, path, content string) appraise.IMAEntry {
		e := entry(path, content)
		e.Template, e.Signature = appraise.TemplateIMASig, s.signV3(t, e.FileHash)
		return e
	}
	v2AsV3 := rsaKey.signed(t, "/usr/bin/tool", "tool")
	v2AsV3.Signature[1] = 3 // a version 2 signature (over the bare digest) relabelled
	v3AsV2 := v3(ecKey, "/usr/bin/tool", "tool")
	v3AsV2.Signature[1] = 2
	tampered := v3(rsaKey, "/usr/bin/tool", "tool")
	tampered.FileHash[0] ^= 1
	for _, tt := range []struct {
		name  string
		entry appraise.IMAEntry
		fault string
	}{
		{"a version 3 RSA signature over the file id passes", v3(rsaKey, "/usr/bin/tool", "tool"), ""},
		{"a version 3 ECDSA signature over the file id passes", v3(ecKey, "/usr/bin/tool", "tool"), ""},
		{"a version 3 signature by an untrusted key is a fault", v3(untrusted, "/usr/bin/tool", "tool"), ImaPolicySignatureUntrustedKey},
		{"a version 2 signature labelled version 3 is a fault", v2AsV3, ImaPolicySignatureInvalid},
		{"a version 3 signature labelled version 2 is a fault", v3AsV2, ImaPolicySignatureInvalid},
		{"a version 3 signature of another file digest is a fault", tampered, ImaPolicySignatureInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantFault(t, policy, tt.entry, nil, tt.fault)
		})
	}
}

// BenchmarkModsig: what an appended signature costs an appraisal: parsing
// it, verifying it the first time (RSA-2048, ECDSA P-256), and a signature
// seen before (the Compiled's cache of verified signatures).
func BenchmarkModsig(b *testing.B) {
	rsaKey, ecKey := newSigner(b, "rsa"), newSigner(b, "ecdsa")
	c := mustCompile(b, map[string]any{"verification_keys": []string{rsaKey.pem, ecKey.pem}})
	for _, s := range []*signer{rsaKey, ecKey} {
		e := s.modsigned(b, "/usr/lib/modules/x.ko", "x.ko", modsigOpts{})
		name := s.cert.PublicKeyAlgorithm.String()
		b.Run("parse "+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseModsig(e.Modsig); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parse and verify "+name, func(b *testing.B) {
			k, err := newVerificationKey(s.cert.Raw)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				m, err := parseModsig(e.Modsig)
				if err != nil || !k.verifyModsig(&m, e.ModsigHash) {
					b.Fatal("does not verify")
				}
			}
		})
		b.Run("appraise seen before "+name, func(b *testing.B) {
			entries := []appraise.IMAEntry{e}
			if f := c.Appraise(entries, nil); len(f) != 0 {
				b.Fatalf("faults %+v", f)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Appraise(entries, nil)
			}
		})
	}
}
