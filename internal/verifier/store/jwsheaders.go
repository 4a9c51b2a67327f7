package store

import (
	"context"
	"crypto/sha256"
	"sync"
)

// jwsHeaders is what a Store knows of the JWS headers of its reports
// (report_jws_headers, CreateReport): the headers it knows are committed,
// so that a report of a known header does not write it again. A
// transaction never marks a header known, since it may roll back: a
// report's transaction writes its header (INSERT ... ON CONFLICT DO
// NOTHING) unless it is known, and asks for it (want); after the
// transaction, storeWanted writes the headers asked for in their own
// statement and marks those that committed known. Header rows are never
// deleted, so a known header stays stored. A signing key has one header,
// so a store knows a few.
type jwsHeaders struct {
	mu     sync.Mutex
	stored map[[sha256.Size]byte]bool
	wanted map[[sha256.Size]byte]string
	// last is the last header digested, and its digest.
	last       string
	lastDigest [sha256.Size]byte
}

// maxJWSHeaders bounds the headers a store keeps known: past it the
// memory starts over (and the headers are written again, once each).
const maxJWSHeaders = 64

func newJWSHeaders() *jwsHeaders {
	return &jwsHeaders{stored: map[[sha256.Size]byte]bool{}, wanted: map[[sha256.Size]byte]string{}}
}

// digest is the SHA-256 of header.
func (j *jwsHeaders) digest(header string) [sha256.Size]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	if header != j.last {
		j.last, j.lastDigest = header, sha256.Sum256([]byte(header))
	}
	return j.lastDigest
}

// isStored reports whether header is known to be stored; one that is not
// is asked for (storeWanted).
func (j *jwsHeaders) isStored(header string) bool {
	d := j.digest(header)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stored[d] {
		return true
	}
	if len(j.wanted) < maxJWSHeaders {
		j.wanted[d] = header
	}
	return false
}

// storeWanted writes the headers asked for since the last call, each in a
// statement of its own outside any transaction, and marks each one written
// (or found) known. A failure leaves the header unknown: the next report
// of it writes it in its transaction again.
func (j *jwsHeaders) storeWanted(ctx context.Context, w querier) {
	j.mu.Lock()
	wanted := j.wanted
	if len(wanted) == 0 {
		j.mu.Unlock()
		return
	}
	j.wanted = map[[sha256.Size]byte]string{}
	j.mu.Unlock()
	for d, header := range wanted {
		if _, err := w.ExecContext(ctx, insertJWSHeader, d[:], header); err != nil {
			continue
		}
		j.mu.Lock()
		if len(j.stored) >= maxJWSHeaders {
			clear(j.stored)
		}
		j.stored[d] = true
		j.mu.Unlock()
	}
}

// insertJWSHeader stores a header ($2) under its SHA-256 ($1), once.
const insertJWSHeader = `INSERT INTO report_jws_headers (sha256, header) VALUES ($1, $2) ON CONFLICT DO NOTHING`
