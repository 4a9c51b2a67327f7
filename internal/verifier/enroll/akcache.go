package enroll

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/store"
)

// defaultAKCacheEntries bounds the verified enrollments an Enroller keeps:
// one per host of a large fleet, about 100 bytes each.
const defaultAKCacheEntries = 1 << 16

// akCache remembers the enrollments whose AK certificate chain VerifyAK
// verified, so that a host's reports do not verify it again (issue 13).
//
// An entry is keyed by the SHA-256 of everything the verification read:
// the host ID asked for and the enrollment row's AK name, AK public area,
// AK certificate and EK binding. A re-enrollment, or a row another host's
// was copied into, is another key and is verified again. The row itself
// is read at every report, so a deleted enrollment is never served. An
// entry holds the window in which the whole chain is valid and is used
// only inside it: at its end the chain is verified again, which refuses
// the expired certificate. It is safe for concurrent use.
type akCache struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]validity
}

// validity is the window in which a verified chain is valid: the latest
// NotBefore and the earliest NotAfter of its certificates.
type validity struct{ notBefore, notAfter time.Time }

func (v validity) contains(t time.Time) bool { return !t.Before(v.notBefore) && !t.After(v.notAfter) }

// chainValidity is the window in which every certificate of chain is valid.
func chainValidity(chain []*x509.Certificate) validity {
	var v validity
	v.notBefore, v.notAfter = signerid.Validity(chain)
	return v
}

func newAKCache(maxEntries int) *akCache {
	return &akCache{max: maxEntries, entries: map[[sha256.Size]byte]validity{}}
}

// akCacheKey is the digest of what VerifyAK checks of enr for hostID.
func akCacheKey(hostID string, enr *store.AKEnrollment) [sha256.Size]byte {
	h := sha256.New()
	for _, field := range [][]byte{
		[]byte(hostID), enr.AKName, enr.AKPublic, enr.AKCertificate,
		enr.EKCertificate, []byte(enr.EKPublicSHA256),
	} {
		// Length-prefixed, so that no two rows hash alike by moving bytes
		// from one field to the next.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(field))))
		h.Write(field)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// verifiedAt says whether the enrollment of key was verified and its chain
// is valid at now. An entry whose window now is outside of is dropped.
func (c *akCache) verifiedAt(key [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[key]
	if ok && !v.contains(now) {
		delete(c.entries, key)
		return false
	}
	return ok
}

// add records a verified chain, valid in v. When the cache is full an
// arbitrary entry makes room: a miss only costs a verification.
func (c *akCache) add(key [sha256.Size]byte, v validity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = v
}
