package appraise

import (
	"bytes"
	"crypto"
	"hash"
)

// slab hands out small slices cut from larger blocks, so that a log of
// many entries does not take an allocation per entry. The slices are
// clipped: appending to one never writes into the next.
type slab[T any] struct {
	buf []T
	// block is the size of the blocks after the first.
	block int
}

// take returns n zero values; from a nil slab, a new slice of its own.
func (s *slab[T]) take(n int) []T {
	if s == nil {
		return make([]T, n)
	}
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]T, 0, max(n, s.block))
	}
	s.buf = s.buf[:len(s.buf)+n]
	return s.buf[len(s.buf)-n : len(s.buf) : len(s.buf)]
}

// maxDigestSize is the size of the longest digest (SHA-512).
const maxDigestSize = 64

// digester checks digests against data with one hash state and one
// scratch sum, kept from one event or IMA line to the next.
type digester struct {
	d   hash.Hash
	sum [maxDigestSize]byte
}

func newDigester(h crypto.Hash) *digester { return &digester{d: h.New()} }

// is reports whether digest is the hash of data.
func (g *digester) is(digest, data []byte) bool {
	g.d.Reset()
	g.d.Write(data)
	return bytes.Equal(g.d.Sum(g.sum[:0]), digest)
}
