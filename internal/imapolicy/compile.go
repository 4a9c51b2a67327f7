package imapolicy

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unsafe"
)

// Compiled is a policy made ready for appraisals: its digests indexed by
// path, its excludes compiled into one expression, its keys parsed. It is
// immutable (but for a concurrency-safe cache of verified signatures), so
// one Compiled serves every host the policy is assigned to.
type Compiled struct {
	digest string
	size   int

	// files, keyrings and bufs map a name to its allowed digests in flat:
	// each digest is one byte naming its algorithm (algIDs) then the
	// digest.
	files    map[string]span
	keyrings map[string]span
	bufs     map[string]span
	flat     []byte

	exclude       *regexp.Regexp // nil without excludes
	keys          map[uint32][]*verificationKey
	bootAggregate bool
	logHashAlg    string

	sigs *sigCache
}

// span is a run of digests in Compiled.flat.
type span struct {
	off uint32
	n   uint16
}

// algIDs number the digest algorithms in Compiled.flat.
var algIDs = []struct {
	name string
	size int
}{{"sha1", 20}, {"sha256", 32}, {"sha384", 48}, {"sha512", 64}}

// algID returns the number of a digest algorithm, or -1.
func algID(name string) int {
	for i, a := range algIDs {
		if a.name == name {
			return i
		}
	}
	return -1
}

// Compile makes p ready for appraisals. p is validated first; it is not
// retained.
func Compile(p *Policy) (*Compiled, error) {
	canonical, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	// Marshal validated a normalised copy; compile from that copy's
	// normal form so that plain hex digests are read right.
	q := *p
	if err := q.normalizedCopy(); err != nil {
		return nil, err
	}
	c := &Compiled{
		digest:        digestOf(canonical),
		bootAggregate: q.ChecksBootAggregate(),
		logHashAlg:    q.LogHashAlg,
		sigs:          &sigCache{},
	}
	total := 0
	for _, ds := range q.Digests {
		total += len(ds)
	}
	c.flat = make([]byte, 0, total*33)
	if c.files, err = c.index(q.Digests); err != nil {
		return nil, err
	}
	if c.keyrings, err = c.index(q.Keyrings); err != nil {
		return nil, err
	}
	if c.bufs, err = c.index(q.IMABuf); err != nil {
		return nil, err
	}
	if len(q.Excludes) > 0 {
		var b strings.Builder
		b.WriteString("^(?:")
		for i, e := range q.Excludes {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString("(?:" + e + ")")
		}
		b.WriteString(")$")
		if c.exclude, err = regexp.Compile(b.String()); err != nil {
			return nil, fmt.Errorf("ima policy: excludes: %w", err)
		}
	}
	for i, pemKey := range q.VerificationKeys {
		k, err := parseKey(pemKey)
		if err != nil {
			return nil, fmt.Errorf("ima policy: verification_keys[%d]: %w", i, err)
		}
		if c.keys == nil {
			c.keys = map[uint32][]*verificationKey{}
		}
		for _, id := range k.ids {
			c.keys[id] = append(c.keys[id], k)
		}
	}
	c.size = c.measure(q)
	return c, nil
}

// index records names' digests in c.flat.
func (c *Compiled) index(names map[string][]string) (map[string]span, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out := make(map[string]span, len(names))
	for name, ds := range names {
		sp := span{off: uint32(len(c.flat)), n: uint16(len(ds))}
		for _, d := range ds {
			alg, h, _ := strings.Cut(d, ":")
			id := algID(alg)
			raw, err := hex.DecodeString(h)
			if id < 0 || err != nil {
				return nil, fmt.Errorf("ima policy: digest %q of %q is not normalised", d, name)
			}
			c.flat = append(c.flat, byte(id))
			c.flat = append(c.flat, raw...)
		}
		out[name] = sp
	}
	if len(c.flat) > 1<<32-1 {
		return nil, errors.New("ima policy: too many digests")
	}
	return out, nil
}

// measure estimates the memory c holds: names, digests, map overhead (a
// Swiss table slot of a string key and a span, at its load factor), the
// expression and the keys.
func (c *Compiled) measure(q Policy) int {
	const slot = int(unsafe.Sizeof("")+unsafe.Sizeof(span{})) + 1
	n := cap(c.flat)
	for _, m := range []map[string]span{c.files, c.keyrings, c.bufs} {
		for name := range m {
			n += len(name)
		}
		n += len(m) * slot * 8 / 7
	}
	for _, e := range q.Excludes {
		n += 64 * len(e) // compiled program: instructions per byte of source, roughly
	}
	for _, k := range q.VerificationKeys {
		n += 4 * len(k)
	}
	return n
}

// Digest returns the policy's digest, "sha256:<hex>" of its canonical
// encoding.
func (c *Compiled) Digest() string { return c.digest }

// SizeBytes returns the memory c holds, approximately (for a cache bound).
func (c *Compiled) SizeBytes() int { return c.size }

// allowed reports whether a digest is among a span's.
func (c *Compiled) allowed(sp span, alg string, digest []byte) bool {
	id := algID(alg)
	if id < 0 {
		return false
	}
	off := int(sp.off)
	for range sp.n {
		a := algIDs[c.flat[off]]
		if int(c.flat[off]) == id && bytes.Equal(c.flat[off+1:off+1+a.size], digest) {
			return true
		}
		off += 1 + a.size
	}
	return false
}

// digests returns a span's digests as "<alg>:<hex>", for a fault.
func (c *Compiled) digests(sp span) string {
	var b strings.Builder
	off := int(sp.off)
	for i := range int(sp.n) {
		a := algIDs[c.flat[off]]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.name + ":" + hex.EncodeToString(c.flat[off+1:off+1+a.size]))
		off += 1 + a.size
	}
	return b.String()
}

func (c *Compiled) excluded(path string) bool {
	return c.exclude != nil && c.exclude.MatchString(path)
}

// hashOf names a file digest algorithm's hash.
func hashOf(alg string) (crypto.Hash, bool) {
	switch alg {
	case "sha1":
		return crypto.SHA1, true
	case "sha256":
		return crypto.SHA256, true
	case "sha384":
		return crypto.SHA384, true
	case "sha512":
		return crypto.SHA512, true
	}
	return 0, false
}
