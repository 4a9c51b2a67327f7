package flavor

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func stored(t testing.TB, sf SignedFlavor) []byte {
	t.Helper()
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	ca := newPKI(t, "cache")
	sfs := ca.signAll(t, goldenFlavors(t, defaultHost(), "c"))
	genuine := make([][]byte, len(sfs))
	for i, sf := range sfs {
		genuine[i] = stored(t, sf)
	}
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
