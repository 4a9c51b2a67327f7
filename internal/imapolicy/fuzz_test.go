package imapolicy

import (
	"testing"
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
