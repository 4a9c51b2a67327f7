package flavor

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/appraise"
)

// Checked is a flavor with the outcome of its FlavorTrusted rule (valid,
// signature verified under the roots): made by Cache.Load, or checked
// lazily by Evaluate.
type Checked struct {
	sf SignedFlavor
	// faults are FlavorTrusted's faults when check is nil.
	faults []appraise.Fault
	// check verifies the signature when the flavor was not checked yet.
	check func(SignedFlavor) error
	// want is the IMA flavor's file list, made once for a cached flavor.
	want *imaWant
	// digest is the SHA-256 of the stored bytes the cache checked; zero
	// for a flavor it does not hold.
	digest [sha256.Size]byte
}

// Digest is the SHA-256 of the flavor's stored bytes when a Cache checked
// them (Load, Get), and false otherwise.
func (c Checked) Digest() ([sha256.Size]byte, bool) { return c.digest, c.digest != [sha256.Size]byte{} }

// Flavor returns the flavor; one a Cache verified (Load, Get) comes
// without its signature, which only the verification reads.
func (c Checked) Flavor() SignedFlavor { return c.sf }

func (c Checked) trustFaults() []appraise.Fault {
	if c.check != nil {
		return flavorTrusted(c.sf, c.check)
	}
	return c.faults
}

func (c Checked) imaWant() *imaWant {
	if c.want != nil {
		return c.want
	}
	return newIMAWant(c.sf.Flavor.IMALogs)
}

// Cache decodes and checks stored flavors once: a flavor whose stored
// bytes decode, which is valid and whose signature verifies under the
// roots is kept, keyed by the SHA-256 of those bytes, while every
// certificate of its signing chain stays valid and for at most MaxAge. Any
// other stored bytes, a flavor with the same ID included, are a miss and
// are checked again. A flavor that fails a check is never kept, so its
// faults are found afresh every time.
//
// The cache is bounded by the size of the stored bytes it holds; when it
// is full, an arbitrary entry makes room (not the least recently used: a
// fleet polled in a cycle larger than the cache would miss every time).
type Cache struct {
	roots    *x509.CertPool
	maxBytes int

	mu    sync.Mutex
	bytes int
	byKey map[[sha256.Size]byte]*cached
	// The parts of the cached flavors that a fleet repeats, one decoded
	// copy of each for all the flavors that hold it: a fleet on one
	// firmware and one software image has one PLATFORM rule list, one OS
	// rule list and one IMA list in as many flavors as it has hosts, and
	// each copy was dozens of objects a host for the collector to mark.
	imas     pool[[sha256.Size]byte, sharedIMA]
	pcrs     pool[[sha256.Size]byte, []PCRRule]
	hardware pool[[sha256.Size]byte, *Hardware]
	names    pool[string, string]
}

type cached struct {
	sf   SignedFlavor
	want *imaWant
	// keys are the keys of its parts in the pools (contentKey); zero for
	// a part it lacks.
	keys        partKeys
	size        int
	from, until time.Time
}

type partKeys struct{ ima, pcrs, hardware [sha256.Size]byte }

// sharedIMA is an IMA list and its index.
type sharedIMA struct {
	logs *IMALogs
	want *imaWant
}

// pool holds one copy of each distinct value, by a key of its content
// (for a part of a flavor, the SHA-256 of its JSON: contentKey; for a
// name, the name itself), with the number of cached flavors that hold it.
// Nothing writes a pooled value after it is made. Call its methods with
// Cache.mu held.
type pool[K comparable, V any] map[K]*pooled[V]

type pooled[V any] struct {
	v    V
	refs int
}

// contentKey is the key of v in a pool: the SHA-256 of its JSON; zero
// when v is nil or does not encode, and then it is not pooled.
func contentKey[T any](v T, present bool) [sha256.Size]byte {
	if !present {
		return [sha256.Size]byte{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

// hold returns the pooled value under key, counting one more holder; v
// becomes the pooled value when there is none. A zero key returns v and
// holds nothing.
func (p pool[K, V]) hold(key K, v V) V {
	var zero K
	if key == zero {
		return v
	}
	e := p[key]
	if e == nil {
		e = &pooled[V]{v: v}
		p[key] = e
	}
	e.refs++
	return e.v
}

// get returns the pooled value under key, if any, without holding it.
func (p pool[K, V]) get(key K) (V, bool) {
	e := p[key]
	if e == nil {
		var zero V
		return zero, false
	}
	return e.v, true
}

// release counts one holder less, and drops the value with the last.
func (p pool[K, V]) release(key K) {
	if e := p[key]; e != nil {
		if e.refs--; e.refs == 0 {
			delete(p, key)
		}
	}
}

// CacheMaxAge bounds how long a checked flavor is believed without
// checking its signing chain again.
const CacheMaxAge = time.Hour

// NewCache returns a cache that checks flavors under roots and holds at
// most maxBytes of stored flavor bytes.
func NewCache(roots *x509.CertPool, maxBytes int) *Cache {
	return &Cache{roots: roots, maxBytes: maxBytes, byKey: map[[sha256.Size]byte]*cached{},
		imas: pool[[sha256.Size]byte, sharedIMA]{}, pcrs: pool[[sha256.Size]byte, []PCRRule]{},
		hardware: pool[[sha256.Size]byte, *Hardware]{}, names: pool[string, string]{}}
}

// Load returns the flavor stored as stored (the JSON of a SignedFlavor)
// with its FlavorTrusted outcome at now. id and part name a flavor whose
// bytes do not decode: it is kept with its ID only, and FlavorTrusted
// fails on it.
func (c *Cache) Load(id string, part Part, stored []byte, now time.Time) Checked {
	key := sha256.Sum256(stored)
	if ch, ok := c.Get(key, now); ok {
		return ch
	}
	var sf SignedFlavor
	decoded := json.Unmarshal(stored, &sf) == nil
	if !decoded {
		sf = SignedFlavor{Flavor: Flavor{Meta: Meta{ID: id, Description: Description{FlavorPart: part}}}}
	}
	var h headerCheck
	faults := flavorTrusted(sf, func(sf SignedFlavor) error {
		var err error
		h, err = verifyHeader(sf, c.roots, now, nil)
		return err
	})
	if !decoded && len(faults) == 0 {
		faults = []appraise.Fault{{Name: FaultFlavorInvalid, Description: "the stored flavor does not decode"}}
	}
	if len(faults) > 0 {
		return Checked{sf: sf, faults: faults}
	}
	// The signature (a JWS with its certificate chain, 3 to 5 kB) was
	// read by the check above and by nothing after it: kept for every host
	// of a fleet it was about 85 MB of a 10,000-node verifier's heap.
	e := &cached{sf: SignedFlavor{Flavor: sf.Flavor}, size: len(stored), from: h.from, until: h.until}
	if limit := now.Add(CacheMaxAge); e.until.After(limit) {
		e.until = limit
	}
	f := &e.sf.Flavor
	e.keys = partKeys{
		ima:      contentKey(f.IMALogs, f.IMALogs != nil),
		pcrs:     contentKey(f.PCRs, len(f.PCRs) > 0),
		hardware: contentKey(f.Hardware, f.Hardware != nil),
	}
	if l := f.IMALogs; l != nil {
		if s, ok := c.sharedIMA(e.keys.ima); ok {
			f.IMALogs, e.want = s.logs, s.want // put counts it
		} else {
			e.want = newIMAWant(l)
		}
	}
	c.put(key, e)
	return Checked{sf: e.sf, want: e.want, digest: key}
}

// Get returns the trusted flavor whose stored bytes have the SHA-256
// digest, if the cache holds it and its signing chain is valid at now.
// The digest must be of the bytes the caller would otherwise Load: a
// digest names only bytes the cache verified itself.
func (c *Cache) Get(digest [sha256.Size]byte, now time.Time) (Checked, bool) {
	c.mu.Lock()
	e, ok := c.byKey[digest]
	c.mu.Unlock()
	if !ok || now.Before(e.from) || now.After(e.until) {
		return Checked{}, false
	}
	return Checked{sf: e.sf, want: e.want, digest: digest}, true
}

func (c *Cache) put(key [sha256.Size]byte, e *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.size > c.maxBytes {
		return
	}
	if old, ok := c.byKey[key]; ok {
		c.evict(key, old)
	}
	for k, old := range c.byKey {
		if c.bytes+e.size <= c.maxBytes {
			break
		}
		c.evict(k, old)
	}
	f := &e.sf.Flavor
	if f.IMALogs != nil {
		s := c.imas.hold(e.keys.ima, sharedIMA{logs: f.IMALogs, want: e.want})
		f.IMALogs, e.want = s.logs, s.want
	}
	f.PCRs = c.pcrs.hold(e.keys.pcrs, f.PCRs)
	f.Hardware = c.hardware.hold(e.keys.hardware, f.Hardware)
	for _, name := range repeatedNames(&f.Meta.Description) {
		*name = c.names.hold(*name, *name)
	}
	c.byKey[key] = e
	c.bytes += e.size
}

// sharedIMA returns the IMA list and index the cache holds under key, if
// any.
func (c *Cache) sharedIMA(key [sha256.Size]byte) (sharedIMA, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.imas.get(key)
}

// evict removes the entry under key, and each of its parts once no other
// entry holds it. Call it with c.mu held.
func (c *Cache) evict(key [sha256.Size]byte, e *cached) {
	c.bytes -= e.size
	delete(c.byKey, key)
	c.imas.release(e.keys.ima)
	c.pcrs.release(e.keys.pcrs)
	c.hardware.release(e.keys.hardware)
	for _, name := range repeatedNames(&e.sf.Flavor.Meta.Description) {
		c.names.release(*name)
	}
}

// repeatedNames are the names of a flavor that a fleet repeats in every
// host's flavors (label, firmware, OS, TPM version), which the cache holds
// as one string each; the ID, hardware UUID and source are the host's own.
func repeatedNames(d *Description) []*string {
	return []*string{&d.Label, &d.BiosName, &d.BiosVersion, &d.OSName, &d.OSVersion, &d.TPMVersion}
}

// Len returns the number of flavors the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// matchedBefore is how many first IMA entries matched the checked flavor
// exactly at the previous report of the boot (Facts.IMAFlavorsMatched, by
// the digest of the bytes the cache checked); 0 when unknown.
func matchedBefore(c Checked, facts *Facts) int {
	d, ok := c.Digest()
	if !ok {
		return 0
	}
	n := facts.IMAFlavorsMatched[d]
	if n < 0 || n > len(facts.IMAEntries) {
		return 0
	}
	return n
}

// IMAMatched lists the IMA flavors that the entries of facts matched
// exactly in ti, evaluated from flavors: by the digest of each flavor's
// stored bytes, the number of entries (len(facts.IMAEntries)). Keep it
// with the entries for the next report of the boot
// (Facts.IMAFlavorsMatched). A flavor the cache did not check, or whose
// ID names more than one of flavors, is left out.
func IMAMatched(ti TrustInformation, flavors []Checked, facts Facts) map[[sha256.Size]byte]int {
	if !facts.IMAReplayed {
		return nil
	}
	var out map[[sha256.Size]byte]int
	for _, pt := range ti.FlavorsTrust {
		for _, r := range pt.Rules {
			if r.Rule.Name != RuleImaEventLogEquals || !r.Trusted || len(r.Faults) > 0 {
				continue
			}
			var digest [sha256.Size]byte
			found := 0
			for _, c := range flavors {
				if c.sf.Flavor.Meta.ID == r.FlavorID {
					digest, _ = c.Digest()
					found++
				}
			}
			if found != 1 || digest == ([sha256.Size]byte{}) {
				continue
			}
			if out == nil {
				out = map[[sha256.Size]byte]int{}
			}
			out[digest] = len(facts.IMAEntries)
		}
	}
	return out
}
