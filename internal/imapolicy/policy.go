// Package imapolicy appraises IMA runtime measurement logs against a
// runtime policy: the digests allowed for each path, path patterns
// excluded, ima-buf entries allowed by name, keys whose file signatures are
// trusted and the boot_aggregate entry checked against the quoted boot
// PCRs. The document is close to Keylime's runtime policy, so that a user
// can carry one over.
//
// Parse decodes and validates a policy document; Compile turns a policy
// into the immutable form appraisals read, which one verifier shares
// between every host the policy is assigned to. Everything but the
// generator (generate.go) is pure: no I/O, no clock.
//
// Signatures: a file whose digest is not allowed passes when a key of the
// policy signed it. ima-sig signatures of version 2 (over the file digest)
// and version 3 (over the digest of struct ima_file_id: type, algorithm,
// file digest) are verified, RSA PKCS#1 v1.5 or ECDSA; so are the appended
// signatures of the ima-modsig template (modsig.go): a detached PKCS#7/CMS
// SignedData over the entry's d-modsig digest, as the kernel accepts it for
// a module (one signer, named by issuer and serial number or by subject key
// identifier, RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA, with or without
// authenticated attributes, DER only).
//
// Limits: the signer must be one of the policy's keys (certificates the
// message carries are not chained to them); fs-verity signatures
// (security.ima of type 6) are not verified. Keys are trusted as the
// policy lists them; keys the kernel loaded into its keyrings (ima-buf
// entries) are appraised, not learnt.
package imapolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Limits of a policy document.
const (
	MaxDocumentBytes   = 32 << 20
	MaxPaths           = 200_000
	MaxDigestsPerPath  = 16
	MaxExcludes        = 1_000
	MaxKeys            = 64
	MaxPathBytes       = 4096
	maxBufNames        = 1_000
	maxExcludeBytes    = 4096
	CurrentMetaVersion = 1
)

// Policy is a runtime policy document. Parse returns it normalised: every
// digest is "<alg>:<lower-case hex>", each list sorted and without
// repeats, BootAggregate set.
type Policy struct {
	Meta Meta `json:"meta"`
	// Digests are the digests allowed for each path; several per path.
	Digests map[string][]string `json:"digests,omitempty"`
	// Excludes are RE2 expressions matched against the whole path (they
	// are anchored at both ends): an excluded path passes whatever its
	// digest.
	Excludes []string `json:"excludes,omitempty"`
	// Keyrings are the ima-buf keyring entries allowed: keyring name to
	// the digests of the buffers (the keys) it may receive.
	Keyrings map[string][]string `json:"keyrings,omitempty"`
	// IMABuf are other ima-buf entries allowed by name (e.g.
	// "kexec-cmdline"), to the digests of their buffers.
	IMABuf map[string][]string `json:"ima_buf,omitempty"`
	// VerificationKeys are PEM x509 certificates whose file signatures
	// (ima-sig, and the appended ones of ima-modsig) are trusted: a file
	// validly signed by one is allowed even when its path is not in
	// Digests.
	VerificationKeys []string `json:"verification_keys,omitempty"`
	// BootAggregate says whether the boot_aggregate entry is checked
	// against the quoted PCRs 0-9 (nil: true).
	BootAggregate *bool `json:"boot_aggregate,omitempty"`
	// LogHashAlg, when set, is the file hash algorithm the log must use.
	LogHashAlg string `json:"log_hash_alg,omitempty"`
}

// Meta describes a policy document.
type Meta struct {
	Version   int    `json:"version"`
	Generator string `json:"generator,omitempty"`
}

// ChecksBootAggregate reports whether the boot_aggregate entry is checked.
func (p *Policy) ChecksBootAggregate() bool { return p.BootAggregate == nil || *p.BootAggregate }

// digestSizes are the digest algorithms a policy may name, by digest size.
var digestSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

// algBySize names plain hex digests by their length.
var algBySize = map[int]string{20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}

// Parse decodes a policy document strictly (unknown fields, trailing data
// and documents over the limits are refused), validates it and returns it
// normalised.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("ima policy: the document has %d bytes, more than %d", len(b), MaxDocumentBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("ima policy: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("ima policy: data after the document")
	}
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Normalize validates p and puts it in its normal form (see Policy). The
// errors name the field in error.
func (p *Policy) Normalize() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Meta.Version != CurrentMetaVersion {
		add("meta.version: %d is not %d", p.Meta.Version, CurrentMetaVersion)
	}
	if len(p.Digests) > MaxPaths {
		add("digests: %d paths, more than %d", len(p.Digests), MaxPaths)
	}
	for path, ds := range p.Digests {
		if err := checkName(path, MaxPathBytes); err != nil {
			add("digests[%q]: %w", path, err)
		}
		p.Digests[path] = normalizeDigests(ds, "digests", path, add)
	}
	if len(p.Excludes) > MaxExcludes {
		add("excludes: %d expressions, more than %d", len(p.Excludes), MaxExcludes)
	}
	for i, e := range p.Excludes {
		if len(e) > maxExcludeBytes {
			add("excludes[%d]: %d bytes, more than %d", i, len(e), maxExcludeBytes)
			continue
		}
		if _, err := regexp.Compile(e); err != nil {
			add("excludes[%d]: %w", i, err)
		}
	}
	p.Excludes = sortedUnique(p.Excludes)
	for _, m := range []struct {
		field string
		names map[string][]string
	}{{"keyrings", p.Keyrings}, {"ima_buf", p.IMABuf}} {
		if len(m.names) > maxBufNames {
			add("%s: %d names, more than %d", m.field, len(m.names), maxBufNames)
		}
		for name, ds := range m.names {
			if err := checkName(name, MaxPathBytes); err != nil {
				add("%s[%q]: %w", m.field, name, err)
			}
			m.names[name] = normalizeDigests(ds, m.field, name, add)
		}
	}
	if len(p.VerificationKeys) > MaxKeys {
		add("verification_keys: %d keys, more than %d", len(p.VerificationKeys), MaxKeys)
	}
	for i, k := range p.VerificationKeys {
		if _, err := parseKey(k); err != nil {
			add("verification_keys[%d]: %w", i, err)
		}
	}
	p.VerificationKeys = sortedUnique(p.VerificationKeys)
	if p.BootAggregate == nil {
		yes := true
		p.BootAggregate = &yes
	}
	if p.LogHashAlg != "" {
		if _, ok := digestSizes[p.LogHashAlg]; !ok {
			add("log_hash_alg: %q is not one of sha1, sha256, sha384, sha512", p.LogHashAlg)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("ima policy: %w", errors.Join(errs...))
	}
	return nil
}

func checkName(s string, limit int) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > limit:
		return fmt.Errorf("%d bytes, more than %d", len(s), limit)
	case strings.ContainsAny(s, "\x00\n"):
		return errors.New("holds a NUL or newline")
	}
	return nil
}

// normalizeDigests validates and normalises one list of digests; the
// limit counts distinct digests.
func normalizeDigests(ds []string, mapField, name string, add func(string, ...any)) []string {
	field := fieldName{mapField, name}
	if len(ds) == 0 {
		add("%s: no digests", field)
	}
	if len(ds) > 16*MaxDigestsPerPath {
		add("%s: %d digests, more than %d", field, len(ds), MaxDigestsPerPath)
		return ds
	}
	if len(ds) == 1 && isNormal(ds[0]) {
		return ds
	}
	out := make([]string, 0, len(ds))
	for i, d := range ds {
		n, err := NormalizeDigest(d)
		if err != nil {
			add("%s[%d]: %w", field, i, err)
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxDigestsPerPath {
		add("%s: %d digests, more than %d", field, len(out), MaxDigestsPerPath)
	}
	return out
}

// fieldName names a map entry in an error, formatted only when printed.
type fieldName struct{ field, name string }

func (f fieldName) String() string { return fmt.Sprintf("%s[%q]", f.field, f.name) }

// isNormal reports whether d is already "<alg>:<lower-case hex>".
func isNormal(d string) bool {
	alg, h, ok := strings.Cut(d, ":")
	if size, known := digestSizes[alg]; !ok || !known || len(h) != 2*size {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NormalizeDigest returns d as "<alg>:<lower-case hex>"; plain hex is named
// by its length.
func NormalizeDigest(d string) (string, error) {
	if isNormal(d) {
		return d, nil
	}
	alg, h, ok := strings.Cut(d, ":")
	if !ok {
		alg, h = "", d
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return "", fmt.Errorf("digest %q is not hex", d)
	}
	if alg == "" {
		if alg, ok = algBySize[len(raw)]; !ok {
			return "", fmt.Errorf("digest %q has %d bytes, the size of no supported algorithm", d, len(raw))
		}
	}
	size, ok := digestSizes[strings.ToLower(alg)]
	if !ok {
		return "", fmt.Errorf("digest %q: algorithm %q is not one of sha1, sha256, sha384, sha512", d, alg)
	}
	if len(raw) != size {
		return "", fmt.Errorf("digest %q: a %s digest has %d bytes, not %d", d, alg, size, len(raw))
	}
	return strings.ToLower(alg) + ":" + hex.EncodeToString(raw), nil
}

// parseKey decodes one verification key: a PEM certificate.
func parseKey(s string) (*verificationKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("a PEM %q block, not a CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one PEM block")
	}
	return newVerificationKey(block.Bytes)
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// Marshal returns the canonical encoding of p: keys and lists sorted,
// digests normalised, no insignificant space. Two policies with the same
// canonical encoding are the same policy.
func (p *Policy) Marshal() ([]byte, error) {
	q := *p
	if err := (&q).normalizedCopy(); err != nil {
		return nil, err
	}
	return q.marshalNormal()
}

// marshalNormal encodes a normalised policy.
func (p *Policy) marshalNormal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("ima policy: %w", err)
	}
	return b, nil
}

// normalizedCopy replaces the maps and lists of q with normalised copies,
// leaving the original's untouched.
func (p *Policy) normalizedCopy() error {
	clone := func(m map[string][]string) map[string][]string {
		if m == nil {
			return nil
		}
		out := make(map[string][]string, len(m))
		for k, v := range m {
			out[k] = slices.Clone(v)
		}
		return out
	}
	p.Digests, p.Keyrings, p.IMABuf = clone(p.Digests), clone(p.Keyrings), clone(p.IMABuf)
	p.Excludes, p.VerificationKeys = slices.Clone(p.Excludes), slices.Clone(p.VerificationKeys)
	if p.BootAggregate != nil {
		v := *p.BootAggregate
		p.BootAggregate = &v
	}
	return p.Normalize()
}

// Digest returns "sha256:<hex>" of the canonical encoding, or "" for a
// policy that does not validate.
func (p *Policy) Digest() string {
	b, err := p.Marshal()
	if err != nil {
		return ""
	}
	return digestOf(b)
}

func digestOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}
