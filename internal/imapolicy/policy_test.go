package imapolicy

import (
	"fmt"
	"strings"
	"testing"
)

const (
	sha256A = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sha256B = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	sha1A   = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
)

func TestParseNormalises(t *testing.T) {
	doc := `{"meta":{"version":1},"digests":{"/usr/bin/bash":["` + strings.ToUpper(sha256B) + `","sha256:` + sha256A + `","` + sha1A + `","sha256:` + sha256A + `"]},
	"excludes":["^/tmp/.*","^/tmp/.*"]}`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	want := []string{"sha1:" + sha1A, "sha256:" + sha256B, "sha256:" + sha256A}
	if got := p.Digests["/usr/bin/bash"]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("digests = %v, want %v", got, want)
	}
	if len(p.Excludes) != 1 || !p.ChecksBootAggregate() {
		t.Errorf("excludes = %v, boot aggregate %v; want one exclude and the boot aggregate checked", p.Excludes, p.ChecksBootAggregate())
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v", err)
	}
	if again.Digest() != p.Digest() || !strings.HasPrefix(p.Digest(), "sha256:") {
		t.Errorf("digest after a round trip = %s, want %s", again.Digest(), p.Digest())
	}
}

// distinct returns n distinct sha1 digests as JSON strings.
func distinct(n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`"%040x"`, i+1)
	}
	return strings.Join(out, ",")
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"an unknown field is refused and named", `{"meta":{"version":1},"allowlist":{}}`, `unknown field "allowlist"`},
		{"an unknown meta field is refused", `{"meta":{"version":1,"author":"x"}}`, `unknown field "author"`},
		{"another meta version is refused", `{"meta":{"version":2}}`, "meta.version"},
		{"a digest that is not hex names its path", `{"meta":{"version":1},"digests":{"/bin/sh":["sha256:zz"]}}`, `digests["/bin/sh"][0]`},
		{"a digest of an unknown algorithm is refused", `{"meta":{"version":1},"digests":{"/bin/sh":["md5:` + sha1A[:32] + `"]}}`, `algorithm "md5"`},
		{"a digest of the wrong size for its algorithm is refused", `{"meta":{"version":1},"digests":{"/bin/sh":["sha256:` + sha1A + `"]}}`, "a sha256 digest has 32 bytes"},
		{"plain hex of no known size is refused", `{"meta":{"version":1},"digests":{"/bin/sh":["abcd"]}}`, "the size of no supported algorithm"},
		{"a path without digests is refused", `{"meta":{"version":1},"digests":{"/bin/sh":[]}}`, `digests["/bin/sh"]: no digests`},
		{"more than 16 distinct digests per path are refused", `{"meta":{"version":1},"digests":{"/bin/sh":[` + distinct(17) + `]}}`, "17 digests, more than 16"},
		{"an invalid exclude expression is named", `{"meta":{"version":1},"excludes":["^/tmp/(.*"]}`, "excludes[0]"},
		{"a key that is not PEM is refused", `{"meta":{"version":1},"verification_keys":["nope"]}`, "verification_keys[0]: not a PEM block"},
		{"a bad keyring digest is named", `{"meta":{"version":1},"keyrings":{".ima":["x"]}}`, `keyrings[".ima"][0]`},
		{"an unknown log hash algorithm is refused", `{"meta":{"version":1},"log_hash_alg":"md5"}`, "log_hash_alg"},
		{"data after the document is refused", `{"meta":{"version":1}} {}`, "data after the document"},
		{"a path with a newline is refused", `{"meta":{"version":1},"digests":{"/bin/a\nb":["` + sha1A + `"]}}`, "NUL or newline"},
		{"a document over 32 MiB is refused", `{"meta":{"version":1},"generator":"` + strings.Repeat("x", MaxDocumentBytes) + `"}`, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
