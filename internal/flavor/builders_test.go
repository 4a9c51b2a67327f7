package flavor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
)

// now is the fixed appraisal time of every test.
var now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// pki is a CMS-like hierarchy: a root, the verifier signing CA under it
// and the verifier's signing leaf under that.
type pki struct {
	root     *x509.Certificate
	rootKey  crypto.Signer
	roots    *x509.CertPool
	inter    *x509.Certificate
	interKey crypto.Signer
	leaf     *x509.Certificate
	leafKey  crypto.Signer
	serialNo int64
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	p := &pki{roots: x509.NewCertPool(), serialNo: 1}
	p.root, p.rootKey = p.ca(t, name+" Root CA", nil, nil)
	p.roots.AddCert(p.root)
	p.inter, p.interKey = p.ca(t, signerid.CACommonName, p.root, p.rootKey)
	p.leaf, p.leafKey = p.issue(t, func(c *x509.Certificate) {}, nil)
	return p
}

// ca makes a CA certificate: self-signed when parent is nil, else an
// intermediate with the document signing usage, like the CMS's.
func (p *pki) ca(t testing.TB, cn string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serialNo++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serialNo),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{signerid.Organization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else {
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{signerid.OIDExtKeyUsageDocumentSigning}
	}
	return testca.Sign(t, tmpl, parent, key.Public(), parentKey), key
}

// issue makes a signing leaf of the verifier under the verifier signing
// CA; edit changes the template, key is the leaf key (a fresh P-384 key
// when nil).
func (p *pki) issue(t testing.TB, edit func(*x509.Certificate), key crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	return p.issueBy(t, p.inter, p.interKey, edit, key)
}

// issueBy makes a leaf like issue under the given issuer.
func (p *pki) issueBy(t testing.TB, issuer *x509.Certificate, issuerKey crypto.Signer, edit func(*x509.Certificate), key crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	p.serialNo++
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(p.serialNo),
		Subject:            pkix.Name{CommonName: signerid.LeafCommonName},
		NotBefore:          now.Add(-time.Hour),
		NotAfter:           now.Add(12 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{signerid.OIDExtKeyUsageDocumentSigning},
	}
	edit(tmpl)
	return testca.Sign(t, tmpl, issuer, key.Public(), issuerKey), key
}

// chain is the x5c chain of a leaf of issue: the leaf, then the verifier
// signing CA.
func (p *pki) chain(leaf *x509.Certificate) []*x509.Certificate {
	return []*x509.Certificate{leaf, p.inter}
}

func (p *pki) sign(t testing.TB, f Flavor) SignedFlavor {
	t.Helper()
	sf, err := Sign(f, p.leafKey, p.chain(p.leaf))
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

func (p *pki) signAll(t testing.TB, fs []Flavor) []SignedFlavor {
	t.Helper()
	var out []SignedFlavor
	for _, f := range fs {
		out = append(out, p.sign(t, f))
	}
	return out
}

// testEvent is one measured-boot event; its digest in each bank is the
// hash of data.
type testEvent struct {
	index int
	typ   uint32
	name  string
	desc  string
	data  string
}

// testHost builds the verified facts of a host with an event log that
// replays and an IMA log that replays, in the SHA384 and SHA256 banks.
type testHost struct {
	banks  []string
	events []testEvent
	ima    []appraise.IMAEntry
}

func defaultHost() testHost {
	return testHost{
		banks: []string{evidence.BankSHA384, evidence.BankSHA256},
		events: []testEvent{
			{0, 0x8, "EV_S_CRTM_VERSION", "", "firmware 1.0"},
			{0, 0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB", "", "firmware volume"},
			{0, 0x4, "EV_SEPARATOR", "separator", "\x00\x00\x00\x00"},
			{7, 0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG", "SecureBoot", "secure boot on"},
			{7, 0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG", "PK", "pk"},
			{7, 0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG", "db", "db"},
			{7, 0x4, "EV_SEPARATOR", "separator", "\x00\x00\x00\x00"},
			{7, 0x800000e0, "EV_EFI_VARIABLE_AUTHORITY", "db", "vendor ca"},
			{8, 0xd, "EV_IPL", "grub_cmd linux /vmlinuz", "grub_cmd linux /vmlinuz"},
			{9, 0xd, "EV_IPL", "/boot/vmlinuz", "kernel image"},
			{9, 0xd, "EV_IPL", "/boot/initrd.img", "initrd image"},
		},
		ima: []appraise.IMAEntry{
			imaEntry("boot_aggregate", "aggregate"),
			imaEntry("/usr/bin/kubelet", "kubelet v1"),
			imaEntry("/usr/lib/systemd/systemd", "systemd"),
		},
	}
}

func imaEntry(path, content string) appraise.IMAEntry {
	sum := sha256.Sum256([]byte(content))
	tsum := sha256.Sum256([]byte(path + content))
	return appraise.IMAEntry{PCR: 10, TemplateHash: tsum[:], Template: appraise.TemplateIMANG, FileHashAlg: "sha256", FileHash: sum[:], Path: path}
}

func bankHash(bank string) crypto.Hash {
	if bank == evidence.BankSHA384 {
		return crypto.SHA384
	}
	return crypto.SHA256
}

func hashOf(bank string, data []byte) []byte {
	if bank == evidence.BankSHA384 {
		s := sha512.Sum384(data)
		return s[:]
	}
	s := sha256.Sum256(data)
	return s[:]
}

// facts replays the host's events into PCR values, as a TPM would hold them.
func (h testHost) facts() Facts {
	f := Facts{
		PCRs:        appraise.PCRs{},
		Events:      map[string][]appraise.Event{},
		Replayed:    map[string]map[int]bool{},
		SecureBoot:  appraise.SecureBootState{Enabled: true},
		IMAReplayed: true,
		IMAEntries:  slices.Clone(h.ima),
	}
	for _, bank := range h.banks {
		size := bankHash(bank).Size()
		f.PCRs[bank] = map[int][]byte{}
		f.Replayed[bank] = map[int]bool{}
		for i := 0; i <= 10; i++ {
			f.PCRs[bank][i] = make([]byte, size)
			if i <= 9 {
				f.Replayed[bank][i] = true
			}
		}
		for _, e := range h.events {
			d := hashOf(bank, []byte(e.data))
			f.PCRs[bank][e.index] = hashOf(bank, append(slices.Clone(f.PCRs[bank][e.index]), d...))
			f.Events[bank] = append(f.Events[bank], appraise.Event{
				Index: e.index, Type: e.typ, TypeName: e.name, Digest: hex.EncodeToString(d), Description: e.desc,
			})
		}
		for _, e := range h.ima {
			f.PCRs[bank][10] = hashOf(bank, append(slices.Clone(f.PCRs[bank][10]), hashOf(bank, e.TemplateHash)...))
		}
	}
	return f
}

var testHostInfo = evidence.HostInfo{
	Version: evidence.Version, HostName: "edge-1", HardwareUUID: "8a1f6e2c-5d3b-4c1a-9e7f-0b2d4c6e8a10",
	OSName: "ubuntu", OSVersion: "24.04", BIOSName: "OVMF", BIOSVersion: "2024.02",
	TPM: evidence.TPMInfo{Present: true, Version: "2.0"}, UEFIEnabled: true, IMAEnabled: true,
}

// ids returns a generator of predictable flavor IDs.
func ids(prefix string) func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("%s-%d", prefix, n)
	}
}

func defaultCompiled(t testing.TB) []*CompiledTemplate {
	t.Helper()
	var out []*CompiledTemplate
	for _, tmpl := range DefaultTemplates() {
		c, err := Compile(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// goldenFlavors makes PLATFORM, OS and IMA flavors from a host with the
// default template.
func goldenFlavors(t testing.TB, h testHost, prefix string) []Flavor {
	t.Helper()
	facts := h.facts()
	fs, err := FromEvidence(NewManifest(&testHostInfo, facts), facts, defaultCompiled(t),
		[]Part{PartPlatform, PartOS, PartIMA}, ids(prefix), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func automatic() Group { return DefaultGroups()[0] }

// findFault returns the faults of a part with the given rule and fault names.
func findFaults(ti TrustInformation, part Part, rule, fault string) []appraise.Fault {
	var out []appraise.Fault
	for _, r := range ti.FlavorsTrust[part].Rules {
		if r.Rule.Name != rule {
			continue
		}
		for _, f := range r.Faults {
			if f.Name == fault {
				out = append(out, f)
			}
		}
	}
	return out
}
