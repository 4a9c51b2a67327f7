package flavor

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func stored(t testing.TB, sf SignedFlavor) []byte {
	t.Helper()
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedGolden signs the default host's golden flavors under a new PKI and
// stores each: the PKI, the signed flavors and their stored bytes.
func signedGolden(t testing.TB, name, id string) (*pki, []SignedFlavor, [][]byte) {
	t.Helper()
	ca := newPKI(t, name)
	sfs := ca.signAll(t, goldenFlavors(t, defaultHost(), id))
	rows := make([][]byte, len(sfs))
	for i, sf := range sfs {
		rows[i] = stored(t, sf)
	}
	return ca, sfs, rows
}

func evaluateLoaded(t testing.TB, c *Cache, rows [][]byte, at time.Time) TrustInformation {
	t.Helper()
	var checked []Checked
	for _, b := range rows {
		checked = append(checked, c.Load("id", PartPlatform, b, at))
	}
	ti, err := EvaluateChecked(automatic(), checked, defaultHost().facts())
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

// The attacks on a cache of verified flavors: once the genuine flavors are
// cached, other bytes under the same flavor ID, a signing chain that has
// expired since, and bytes that do not decode must all fail as they would
// without a cache.
func TestTheFlavorCacheNeverVouchesForBytesOrTimesItDidNotCheck(t *testing.T) {
	ca, sfs, genuine := signedGolden(t, "cache", "c")
	platform := slices.IndexFunc(sfs, func(sf SignedFlavor) bool { return sf.Flavor.Meta.Description.FlavorPart == PartPlatform })
	// The attacker's PLATFORM flavor: the same ID and signature, one PCR
	// value changed to what a tampered host would quote.
	forged := sfs[platform]
	forged.Flavor.PCRs = slices.Clone(forged.Flavor.PCRs)
	forged.Flavor.PCRs[0].Measurement = "00" + forged.Flavor.PCRs[0].Measurement[2:]
	withForged := slices.Clone(genuine)
	withForged[platform] = stored(t, forged)
	undecodable := slices.Clone(genuine)
	undecodable[platform] = []byte(`{"flavor":`)

	for _, c := range []struct {
		name  string
		rows  [][]byte
		at    time.Time
		fault string
	}{
		{"the same flavor ID with other bytes is verified again", withForged, now, FaultFlavorSignatureInvalid},
		{"a cached flavor whose signing certificate has expired is not trusted", genuine, now.Add(13 * time.Hour), FaultFlavorCertificateUntrusted},
		{"a cached flavor before its signing certificate is valid is not trusted", genuine, now.Add(-2 * time.Hour), FaultFlavorCertificateUntrusted},
		{"stored bytes that do not decode are an invalid flavor", undecodable, now, FaultFlavorInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			cache := NewCache(ca.roots, 64<<20)
			if ti := evaluateLoaded(t, cache, genuine, now); !ti.Overall {
				t.Fatalf("the genuine flavors are not trusted: %+v", ti)
			}
			if cache.Len() != len(genuine) {
				t.Fatalf("the cache holds %d flavors, want %d", cache.Len(), len(genuine))
			}
			ti := evaluateLoaded(t, cache, c.rows, c.at)
			if ti.Overall || len(findFaults(ti, PartPlatform, RuleFlavorTrusted, c.fault)) == 0 {
				t.Fatalf("overall %v, PLATFORM %+v; want untrusted with %s", ti.Overall, ti.FlavorsTrust[PartPlatform], c.fault)
			}
			// And the genuine flavors are trusted again right after.
			if ti := evaluateLoaded(t, cache, genuine, now); !ti.Overall {
				t.Fatalf("the genuine flavors are not trusted after the attack: %+v", ti)
			}
		})
	}
}

func TestTheFlavorCacheIsBoundedByTheBytesItHolds(t *testing.T) {
	ca := newPKI(t, "cache")
	sfs := ca.signAll(t, goldenFlavors(t, defaultHost(), "c"))
	var rows [][]byte
	largest := 0
	for _, sf := range sfs {
		b := stored(t, sf)
		rows = append(rows, b)
		largest = max(largest, len(b))
	}
	cache := NewCache(ca.roots, largest)
	for _, b := range rows {
		cache.Load("id", PartPlatform, b, now)
		if cache.bytes > largest {
			t.Fatalf("the cache holds %d bytes, its bound is %d", cache.bytes, largest)
		}
	}
	if cache.Len() != 1 {
		t.Fatalf("the cache holds %d flavors, want 1", cache.Len())
	}
	if ti := evaluateLoaded(t, cache, rows, now); !ti.Overall {
		t.Fatalf("flavors that do not fit the cache are not trusted: %+v", ti)
	}
}

// BenchmarkEvaluateCached is BenchmarkEvaluate with the flavors loaded
// from their stored bytes through a Cache that holds them.
func BenchmarkEvaluateCached(b *testing.B) {
	ca := newPKI(b, "bench")
	var rows [][]byte
	for _, sf := range ca.signAll(b, goldenFlavors(b, defaultHost(), "b")) {
		rows = append(rows, stored(b, sf))
	}
	cache := NewCache(ca.roots, 64<<20)
	b.ReportAllocs()
	for b.Loop() {
		if ti := evaluateLoaded(b, cache, rows, now); !ti.Overall {
			b.Fatalf("not trusted: %+v", ti)
		}
	}
}

// The IMA entries of a boot that matched an IMA flavor exactly are not
// checked again at the next report: only the new ones are. That memory
// is keyed by the digest of the flavor's stored bytes. The attack: after
// the boot's entries matched the genuine flavor, the IMA flavor is
// replaced by another, validly signed under the same ID, that lists one
// of those files with another measurement. The entries must be checked
// against it whole; a memory keyed by host or by flavor ID would skip
// them and trust the host.
func TestAMatchedIMAPrefixIsOnlyReusedForTheSameFlavorBytes(t *testing.T) {
	ca := newPKI(t, "cache")
	h := defaultHost()
	sfs := ca.signAll(t, goldenFlavors(t, h, "c"))
	imaAt := slices.IndexFunc(sfs, func(sf SignedFlavor) bool { return sf.Flavor.Meta.Description.FlavorPart == PartIMA })
	other := sfs[imaAt].Flavor
	other.IMALogs = &IMALogs{ImaTemplate: other.IMALogs.ImaTemplate, ImaMeasurements: slices.Clone(other.IMALogs.ImaMeasurements)}
	other.IMALogs.ImaMeasurements[1].Measurement = imaMeasurement(imaEntry(h.ima[1].Path, "kubelet v0")).Measurement
	replaced := slices.Clone(sfs)
	replaced[imaAt] = ca.sign(t, other)
	cache := NewCache(ca.roots, 64<<20)
	load := func(sfs []SignedFlavor) []Checked {
		var out []Checked
		for _, sf := range sfs {
			out = append(out, cache.Load(sf.Flavor.Meta.ID, sf.Flavor.Meta.Description.FlavorPart, stored(t, sf), now))
		}
		return out
	}
	evaluate := func(flavors []Checked, facts Facts) TrustInformation {
		ti, err := EvaluateChecked(automatic(), flavors, facts)
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}

	genuine := load(sfs)
	facts := h.facts()
	ti := evaluate(genuine, facts)
	matched := IMAMatched(ti, genuine, facts)
	if !ti.Overall || len(matched) != 1 {
		t.Fatalf("the genuine flavors: overall %v, matched %v; want trusted and one IMA flavor matched", ti.Overall, matched)
	}
	if d, _ := genuine[imaAt].Digest(); matched[d] != len(h.ima) {
		t.Fatalf("matched %v, want %d entries of the genuine IMA flavor", matched, len(h.ima))
	}

	// The next report of the boot, one entry more, against each flavor set.
	facts.IMAEntries = append(slices.Clone(h.ima), h.ima[2])
	facts.IMAFlavorsMatched = matched
	if ti := evaluate(genuine, facts); !ti.Overall {
		t.Fatalf("the genuine flavors after the matched prefix are not trusted: %+v", ti.FlavorsTrust[PartIMA])
	}
	ti = evaluate(load(replaced), facts)
	if ti.Overall || len(findFaults(ti, PartIMA, RuleImaEventLogEquals, FaultImaMeasurementMismatch)) == 0 {
		t.Fatalf("the replaced IMA flavor: overall %v, IMA %+v; want %s", ti.Overall, ti.FlavorsTrust[PartIMA], FaultImaMeasurementMismatch)
	}
	if m := IMAMatched(ti, load(replaced), facts); len(m) != 0 {
		t.Fatalf("an IMA flavor the entries did not match is recorded as matched: %v", m)
	}
	// A count past the entries (a memory of a longer log) is ignored.
	facts.IMAEntries = append(facts.IMAEntries, imaEntry("/usr/bin/evil", "x"))
	facts.IMAFlavorsMatched = map[[32]byte]int{}
	for d := range matched {
		facts.IMAFlavorsMatched[d] = len(facts.IMAEntries) + 1
	}
	if ti := evaluate(genuine, facts); ti.Overall {
		t.Fatal("an unexpected entry is trusted with a matched count past the entries")
	}
}

// A verified flavor is cached without its signature: at 10,000 hosts the
// signatures and their certificate chains were about 85 MB of the
// verifier's heap, and nothing reads them after the verification. A
// cached flavor still serves a trusted evaluation, and a flavor whose
// signature the cache dropped is never trusted on the strength of the
// dropped bytes: the same bytes are the cache key, other bytes are
// verified anew.
func TestTheFlavorCacheKeepsNoSignature(t *testing.T) {
	ca, sfs, rows := signedGolden(t, "nosig", "n")
	cache := NewCache(ca.roots, 64<<20)
	if ti := evaluateLoaded(t, cache, rows, now); !ti.Overall {
		t.Fatalf("the genuine flavors are not trusted: %+v", ti)
	}
	for i, b := range rows {
		c := cache.Load("id", PartPlatform, b, now)
		if c.Flavor().Signature != "" {
			t.Errorf("flavor %d: the cache kept its signature (%d bytes)", i, len(c.Flavor().Signature))
		}
		if c.Flavor().Flavor.Meta.ID != sfs[i].Flavor.Meta.ID {
			t.Errorf("flavor %d: cached as %q, want %q", i, c.Flavor().Flavor.Meta.ID, sfs[i].Flavor.Meta.ID)
		}
	}
	if ti := evaluateLoaded(t, cache, rows, now); !ti.Overall {
		t.Fatalf("the cached flavors are not trusted: %+v", ti)
	}
	// Stored without a signature, the same flavor is not trusted.
	unsigned := make([][]byte, len(sfs))
	for i, sf := range sfs {
		unsigned[i] = stored(t, SignedFlavor{Flavor: sf.Flavor})
	}
	if ti := evaluateLoaded(t, cache, unsigned, now); ti.Overall {
		t.Fatal("flavors stored without their signatures are trusted")
	}
}

// The IMA flavors of a fleet that runs one software image hold the same
// IMA list: the cache keeps one decoded copy of it for all of them, and
// drops it with the last flavor that holds it. Each host is still
// appraised against its own flavors.
func TestTheFlavorCacheSharesIdenticalIMALists(t *testing.T) {
	ca := newPKI(t, "share")
	imaFlavor := func(h testHost, id string) []byte {
		for _, sf := range ca.signAll(t, goldenFlavors(t, h, id)) {
			if sf.Flavor.IMALogs != nil {
				return stored(t, sf)
			}
		}
		t.Fatal("no IMA flavor")
		return nil
	}
	other := defaultHost()
	other.ima = slices.Clone(other.ima)
	other.ima[1] = imaEntry("/usr/bin/kubelet", "kubelet v2")
	a, b, c := imaFlavor(defaultHost(), "a"), imaFlavor(defaultHost(), "b"), imaFlavor(other, "c")
	if len(a) != len(c) {
		t.Fatalf("the test wants IMA flavors of one size: %d and %d bytes", len(a), len(c))
	}
	shared := func(cache *Cache) (lists int, refs []int) {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		for _, s := range cache.imas {
			refs = append(refs, s.refs)
		}
		return len(cache.imas), refs
	}

	cache := NewCache(ca.roots, 64<<20)
	ca1, cb := cache.Load("a", PartIMA, a, now), cache.Load("b", PartIMA, b, now)
	if ca1.Flavor().Flavor.IMALogs != cb.Flavor().Flavor.IMALogs || ca1.imaWant() != cb.imaWant() {
		t.Error("two flavors with one IMA list hold two copies of it")
	}
	if ca1.Flavor().Flavor.Meta.ID == cb.Flavor().Flavor.Meta.ID {
		t.Error("the two flavors lost their own IDs")
	}
	cc := cache.Load("c", PartIMA, c, now)
	if cc.Flavor().Flavor.IMALogs == ca1.Flavor().Flavor.IMALogs {
		t.Error("a flavor with another IMA list holds the first one's")
	}
	if lists, refs := shared(cache); lists != 2 || !slices.Equal(slices.Sorted(slices.Values(refs)), []int{1, 2}) {
		t.Errorf("shared IMA lists: %d held %v times, want 2 held [1 2] times", lists, refs)
	}

	// Room for one flavor: loading c evicts a, and a's list goes with it.
	small := NewCache(ca.roots, len(a))
	small.Load("a", PartIMA, a, now)
	small.Load("c", PartIMA, c, now)
	if lists, refs := shared(small); lists != 1 || !slices.Equal(refs, []int{1}) || small.Len() != 1 {
		t.Errorf("after an eviction: %d shared IMA lists held %v times, %d flavors; want 1, [1], 1", lists, refs, small.Len())
	}
}

// A fleet on one firmware and one OS image has the same PLATFORM and OS
// rules, and the same hardware, in every host's flavors: the cache holds
// one copy of each for all of them, and the names they repeat as one
// string each, while every flavor keeps its own ID.
func TestTheFlavorCacheSharesThePartsAFleetRepeats(t *testing.T) {
	ca := newPKI(t, "share-parts")
	byPart := func(h testHost, id string) map[Part][]byte {
		out := map[Part][]byte{}
		for _, sf := range ca.signAll(t, goldenFlavors(t, h, id)) {
			out[sf.Flavor.Meta.Description.FlavorPart] = stored(t, sf)
		}
		return out
	}
	newFirmware := defaultHost()
	newFirmware.events = slices.Clone(newFirmware.events)
	newFirmware.events[0].data = "firmware 2.0"
	a, b, c := byPart(defaultHost(), "a"), byPart(defaultHost(), "b"), byPart(newFirmware, "c")

	cache := NewCache(ca.roots, 64<<20)
	load := func(id string, rows map[Part][]byte, p Part) Flavor {
		t.Helper()
		ch := cache.Load(id+string(p), p, rows[p], now)
		if faults := ch.trustFaults(); len(faults) > 0 {
			t.Fatalf("flavor %s %s: %v", id, p, faults)
		}
		return ch.Flavor().Flavor
	}
	aP, bP, cP := load("a", a, PartPlatform), load("b", b, PartPlatform), load("c", c, PartPlatform)
	aO, bO, cO := load("a", a, PartOS), load("b", b, PartOS), load("c", c, PartOS)
	if len(aP.PCRs) == 0 || len(aO.PCRs) == 0 || aP.Hardware == nil {
		t.Fatal("the test wants PLATFORM and OS flavors with PCR rules and hardware")
	}
	same := func(x, y []PCRRule) bool { return &x[0] == &y[0] }
	if !same(aP.PCRs, bP.PCRs) || !same(aO.PCRs, bO.PCRs) || !same(aO.PCRs, cO.PCRs) {
		t.Error("flavors with the same PCR rules hold copies of them")
	}
	if same(aP.PCRs, cP.PCRs) || slices.EqualFunc(aP.PCRs, cP.PCRs, func(x, y PCRRule) bool { return x.Measurement == y.Measurement }) {
		t.Error("a PLATFORM flavor of another firmware holds the first one's rules")
	}
	if aP.Hardware != bP.Hardware || aP.Hardware != cP.Hardware {
		t.Error("flavors with the same hardware hold copies of it")
	}
	if aP.Meta.ID == bP.Meta.ID || aO.Meta.ID == bO.Meta.ID {
		t.Error("the flavors lost their own IDs")
	}
	if unsafe.StringData(aP.Meta.Description.Label) != unsafe.StringData(bO.Meta.Description.Label) {
		t.Error("the label the flavors repeat is a string each")
	}
	pools := func(c *Cache) (pcrs, hardware []int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.pcrs {
			pcrs = append(pcrs, e.refs)
		}
		for _, e := range c.hardware {
			hardware = append(hardware, e.refs)
		}
		slices.Sort(pcrs)
		return pcrs, hardware
	}
	// Two PLATFORM rule lists (a and b's, c's) and one OS list.
	if pcrs, hw := pools(cache); !slices.Equal(pcrs, []int{1, 2, 3}) || !slices.Equal(hw, []int{3}) {
		t.Errorf("pooled PCR rule lists held %v times and hardware %v times; want [1 2 3] and [3]", pcrs, hw)
	}

	// Room for one flavor: loading c's evicts a's, and a's parts go with it.
	small := NewCache(ca.roots, len(a[PartPlatform]))
	small.Load("a", PartPlatform, a[PartPlatform], now)
	cPS := small.Load("c", PartPlatform, c[PartPlatform], now).Flavor().Flavor
	if pcrs, hw := pools(small); !slices.Equal(pcrs, []int{1}) || !slices.Equal(hw, []int{1}) || small.Len() != 1 {
		t.Errorf("after an eviction: PCR rule lists held %v times, hardware %v times, %d flavors; want [1], [1], 1", pcrs, hw, small.Len())
	}
	if small.pcrs[contentKey(cPS.PCRs, true)] == nil {
		t.Error("the eviction dropped the rules of the flavor that stays")
	}
	for name, e := range small.names {
		if e.refs != 1 {
			t.Errorf("after an eviction the name %q is held %d times, want once", name, e.refs)
		}
	}
	if small.names[cPS.Meta.Description.Label] == nil {
		t.Error("the eviction dropped the label of the flavor that stays")
	}
}

// BenchmarkCacheHeldObjects is what the cache keeps of a fleet's flavors:
// 500 hosts on one firmware and one software image, each with its own
// PLATFORM, OS and IMA flavor (its own IDs, hardware UUID and source), as
// the heap objects the collector marks a host (objects/host) and bytes.
//
//	go test -run '^$' -bench CacheHeldObjects -benchtime 1x ./internal/flavor
func BenchmarkCacheHeldObjects(b *testing.B) {
	const hosts = 500
	ca := newPKI(b, "held")
	fs := goldenFlavors(b, defaultHost(), "template")
	var rows [][]byte
	for h := range hosts {
		for _, f := range fs {
			f.Meta.ID = fmt.Sprintf("%s-%04d", f.Meta.Description.FlavorPart, h)
			f.Meta.Description.HardwareUUID = fmt.Sprintf("00000000-0000-4000-8000-%012d", h)
			f.Meta.Description.Source = fmt.Sprintf("host-%04d", h)
			rows = append(rows, stored(b, ca.signAll(b, []Flavor{f})[0]))
		}
	}
	heap := func() (objects, bytes uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapObjects, m.HeapAlloc
	}
	var objects, bytes float64
	for b.Loop() {
		b.StopTimer()
		o0, b0 := heap()
		b.StartTimer()
		cache := NewCache(ca.roots, 1<<30)
		for i, row := range rows {
			cache.Load(fmt.Sprint(i), "", row, now)
		}
		b.StopTimer()
		o1, b1 := heap()
		if cache.Len() != len(rows) {
			b.Fatalf("the cache holds %d flavors of %d", cache.Len(), len(rows))
		}
		objects, bytes = float64(o1)-float64(o0), float64(b1)-float64(b0)
		runtime.KeepAlive(cache)
		b.StartTimer()
	}
	b.ReportMetric(objects/hosts, "objects/host")
	b.ReportMetric(bytes/hosts, "bytes/host")
}
