package imapolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"regexp"
	"strings"
)

// Compiled is a policy made ready for appraisals: its digests indexed by
// path, its excludes compiled into one expression, its keys parsed. It is
// immutable (but for a concurrency-safe cache of verified signatures), so
// one Compiled serves every host the policy is assigned to.
type Compiled struct {
	digest string
	size   int

	// files, keyrings and bufs map a name to its allowed digests. flat
	// holds each name followed by its digests, each one byte naming its
	// algorithm (algIDs) then the digest; seed keys the names' hashes.
	files    nameIndex
	keyrings nameIndex
	bufs     nameIndex
	flat     []byte
	seed     maphash.Seed

	exclude       *regexp.Regexp // nil without excludes
	keys          map[uint32][]*verificationKey
	signers       []*verificationKey // every key, for appended signatures
	bootAggregate bool
	logHashAlg    string

	sigs *sigCache
}

// span is a run of digests in Compiled.flat.
type span struct {
	off uint32
	n   uint16
}

// nameIndex finds a name's digests in Compiled.flat with no pointer for the
// garbage collector to follow, whatever the number of names: byHash maps
// the name's seeded 64-bit hash to a packed record (where the name starts
// in flat, its length, its number of digests, which follow it). A name
// whose hash an earlier name has is in collide.
type nameIndex struct {
	byHash  map[uint64]uint64
	collide map[string]span
}

func packRecord(off, nameLen, n int) uint64 {
	return uint64(off)<<32 | uint64(nameLen)<<16 | uint64(n)
}

// lookup returns the digests of a name.
func (c *Compiled) lookup(ix *nameIndex, name string) (span, bool) {
	if rec, ok := ix.byHash[maphash.String(c.seed, name)]; ok {
		off, nameLen, n := int(rec>>32), int(rec>>16&0xffff), uint16(rec&0xffff)
		if string(c.flat[off:off+nameLen]) == name {
			return span{off: uint32(off + nameLen), n: n}, true
		}
	}
	sp, ok := ix.collide[name]
	return sp, ok
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
	q := *p
	if err := q.normalizedCopy(); err != nil {
		return nil, err
	}
	canonical, err := q.marshalNormal()
	if err != nil {
		return nil, err
	}
	c := &Compiled{
		digest:        digestOf(canonical),
		bootAggregate: q.ChecksBootAggregate(),
		logHashAlg:    q.LogHashAlg,
		sigs:          &sigCache{},
		seed:          maphash.MakeSeed(),
	}
	total := 0
	for name, ds := range q.Digests {
		total += len(name) + len(ds)*(1+sha256.Size)
	}
	c.flat = make([]byte, 0, total)
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
		c.signers = append(c.signers, k)
		for _, id := range k.ids {
			c.keys[id] = append(c.keys[id], k)
		}
	}
	c.size = c.measure(q)
	return c, nil
}

// index records names and their digests in c.flat.
func (c *Compiled) index(names map[string][]string) (nameIndex, error) {
	ix := nameIndex{byHash: make(map[uint64]uint64, len(names))}
	for name, ds := range names {
		off := len(c.flat)
		c.flat = append(c.flat, name...)
		for _, d := range ds {
			alg, h, _ := strings.Cut(d, ":")
			id := algID(alg)
			if id < 0 || hex.DecodedLen(len(h)) != algIDs[id].size {
				return nameIndex{}, fmt.Errorf("ima policy: digest %q of %q is not normalised", d, name)
			}
			c.flat = append(c.flat, byte(id))
			start := len(c.flat)
			c.flat = append(c.flat, make([]byte, algIDs[id].size)...)
			if _, err := hex.Decode(c.flat[start:], []byte(h)); err != nil {
				return nameIndex{}, fmt.Errorf("ima policy: digest %q of %q is not normalised", d, name)
			}
		}
		if len(c.flat) > math.MaxUint32 || len(name) > math.MaxUint16 || len(ds) > math.MaxUint16 {
			return nameIndex{}, errors.New("ima policy: too large to index")
		}
		h := maphash.String(c.seed, name)
		if _, taken := ix.byHash[h]; taken {
			if ix.collide == nil {
				ix.collide = map[string]span{}
			}
			ix.collide[name] = span{off: uint32(off + len(name)), n: uint16(len(ds))}
			continue
		}
		ix.byHash[h] = packRecord(off, len(name), len(ds))
	}
	return ix, nil
}

// measure estimates the memory c holds: names, digests, map overhead (a
// Swiss table slot of a string key and a span, at its load factor), the
// expression and the keys.
func (c *Compiled) measure(q Policy) int {
	// A map slot: the key, the value and a control byte, at a load
	// factor of 7/8.
	const slot = (8 + 8 + 1) * 8 / 7
	n := cap(c.flat)
	for _, ix := range []nameIndex{c.files, c.keyrings, c.bufs} {
		n += len(ix.byHash) * slot
		for name := range ix.collide {
			n += len(name) + 64
		}
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
