package imapolicy

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"meta":{"version":1},"digests":{"/usr/bin/bash":["sha256:` + sha256A + `","` + sha1A + `"]},"excludes":["^/tmp/.*"],"keyrings":{".ima":["` + sha256B + `"]},"ima_buf":{"kexec-cmdline":["` + sha256B + `"]},"boot_aggregate":false,"log_hash_alg":"sha256"}`))
	f.Add([]byte(`{"meta":{"version":1},"verification_keys":["-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"]}`))
	f.Add([]byte(`{"meta":{"version":1},"excludes":["(a+)+$","[[:alpha:]]","\\"]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		// A parsed policy compiles, and its canonical encoding parses to
		// the same policy.
		c, err := Compile(p)
		if err != nil {
			t.Fatalf("a parsed policy does not compile: %v", err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("the canonical encoding %s does not parse: %v", b, err)
		}
		if q.Digest() != c.Digest() {
			t.Fatalf("digest %s after a round trip, compiled %s", q.Digest(), c.Digest())
		}
		c.Appraise(nil, nil)
	})
}

// FuzzParseModsig feeds appended signatures (an ima-modsig entry's field,
// untrusted input) to the parser and the appraisal: no panic, and a parsed
// message holds bounded, consistent fields.
func FuzzParseModsig(f *testing.F) {
	rsaKey, ecKey := newSigner(f, "rsa"), newSigner(f, "ecdsa")
	for _, o := range []modsigOpts{{}, {keyID: true}, {attrs: true}, {pss: true}, {signers: 2}, {withContent: true}} {
		b, _ := rsaKey.modsig(f, []byte("module"), o)
		f.Add(b)
		b, _ = ecKey.modsig(f, []byte("module"), o)
		f.Add(b)
	}
	fixtures, err := filepath.Glob(filepath.Join("testdata", "modsig", "*.p7s"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x30, 0x80, 0, 0})
	policy := mustCompile(f, map[string]any{"verification_keys": []string{rsaKey.pem, ecKey.pem}})
	module := sha256.Sum256([]byte("module"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseModsig(b)
		if err == nil {
			if len(m.sig) == 0 || len(m.sig) > maxModsigSignatureBytes {
				t.Fatalf("a parsed signature of %d bytes", len(m.sig))
			}
			if (m.skid == nil) == (m.issuer == nil) || (m.issuer != nil) != (m.serial != nil) {
				t.Fatalf("a parsed signer that is neither or both forms: %+v", m)
			}
			if !m.hash.Available() || m.scheme == 0 {
				t.Fatalf("a parsed message without a digest or scheme: %+v", m)
			}
			_ = m.signerName()
		}
		e := entry("/usr/lib/modules/fuzz.ko", "fuzz")
		e.Template, e.Signature, e.ModsigHashAlg, e.ModsigHash, e.Modsig = appraise.TemplateIMAModsig, []byte{}, "sha256", module[:], b
		for _, fault := range policy.Appraise([]appraise.IMAEntry{e}, nil) {
			if fault.Name != ImaPolicySignatureInvalid && fault.Name != ImaPolicySignatureUntrustedKey && fault.Name != ImaPolicyFileNotAllowed {
				t.Fatalf("fault %+v", fault)
			}
		}
	})
}
