package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
)

// go test -run '^$' -bench ReportStoreAtFleetSize -benchtime 200x -count 3 ./internal/verifier/store
//
// BenchmarkReportStoreAtFleetSize is the store's work of one trust report
// (read the host, its group, the references of the flavors that apply to
// it, then commit the report, the status and the boot without waiting for
// fsync, as HVS does) for a random host of a fleet of 100,
// 1,000 and 10,000 hosts in the automatic group, each with its own PLATFORM,
// OS and IMA flavors and a HOST_UNIQUE flavor bound by hardware UUID only,
// beside three flavors the whole fleet shares. The cost must not grow with
// the fleet (issue 13: at most 1.2× from 100 to 10,000 hosts). Beside the
// wall time it reports the process's CPU time per report (cpu-ns), which a
// loaded machine stretches less: on an SQLite file that is the store's
// whole work, on PostgreSQL the client's side only.
func BenchmarkReportStoreAtFleetSize(b *testing.B) {
	benchStores(b, benchFleetSizes, "sqlite-file", "postgres")
}

// fleetFlavor is a flavor document of a typical size.
var fleetFlavor = make([]byte, 2048)

func benchFleetSizes(b *testing.B, s *Store) {
	ctx := b.Context()
	const gid = "automatic"
	if err := s.CreateFlavorGroup(ctx, FlavorGroup{ID: gid, Name: gid, Policies: []byte(`{}`), CreatedAt: t0}); err != nil {
		b.Fatal(err)
	}
	for _, part := range []string{"PLATFORM", "OS", "SOFTWARE"} {
		f := Flavor{ID: "fleet-" + part, Part: part, Label: "fleet", Signed: fleetFlavor, GroupIDs: []string{gid}, CreatedAt: t0}
		if err := s.CreateFlavor(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	hosts, reports := 0, 0
	for _, size := range []int{100, 1000, 10000} {
		if err := addFleetHosts(ctx, s, gid, hosts, size); err != nil {
			b.Fatal(err)
		}
		hosts = size
		if s.Backend() == "postgres" {
			// The fleet grows a hundredfold in seconds here, over days in
			// a deployment, where autovacuum analyzes the tables as it
			// grows: without fresh statistics PostgreSQL keeps the plans
			// it cached for the small fleet.
			if _, err := s.wdb.ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(1, uint64(size)))
		b.Run(fmt.Sprintf("hosts=%d", size), func(b *testing.B) {
			cpu := benchfloor.Start()
			for b.Loop() {
				i := rng.IntN(hosts)
				reports++
				if err := reportStoreWork(ctx, s, gid, i, reports); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Report(b)
		})
	}
}

func fleetHostID(i int) string   { return fmt.Sprintf("host-%05d", i) }
func fleetHostUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// addFleetHosts adds hosts from..to-1 with their flavors, in batches.
func addFleetHosts(ctx context.Context, s *Store, gid string, from, to int) error {
	const batch = 500
	for lo := from; lo < to; lo += batch {
		err := s.InTx(ctx, func(tx *Tx) error {
			for i := lo; i < min(lo+batch, to); i++ {
				id, hw := fleetHostID(i), fleetHostUUID(i)
				if err := tx.CreateHost(ctx, Host{ID: id, Name: id, ConnectionString: "nats://" + id,
					HardwareUUID: hw, Status: "CONNECTED", FlavorGroupIDs: []string{gid}, CreatedAt: t0}); err != nil {
					return err
				}
				for _, f := range []Flavor{
					{ID: id + "-platform", Part: "PLATFORM", HostID: id, HardwareUUID: hw},
					{ID: id + "-os", Part: "OS", HostID: id, HardwareUUID: hw},
					{ID: id + "-ima", Part: "IMA", HostID: id, HardwareUUID: hw},
					{ID: id + "-unique", Part: "HOST_UNIQUE", HardwareUUID: hw},
				} {
					f.Label, f.Signed, f.GroupIDs, f.CreatedAt = "l", fleetFlavor, []string{gid}, t0
					if err := tx.CreateFlavor(ctx, f); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("add hosts from %d: %w", lo, err)
		}
	}
	return nil
}

// reportStoreWork is what HVS asks of the store for one report of host i:
// the host, then its group, the references of its flavors (which HVS finds
// in its cache of verified flavors by digest: all of them, in a steady
// fleet) and its IMA policies, and the report with the host's outcome in
// one transaction.
func reportStoreWork(ctx context.Context, s *Store, gid string, i, n int) error {
	rh, err := s.HostForReport(ctx, fleetHostID(i))
	if err != nil {
		return err
	}
	h := rh.Host
	pol, err := s.ReportPolicies(ctx, h.ID, h.HardwareUUID)
	if err != nil {
		return err
	}
	if fs := pol.FlavorRefs[gid]; len(pol.Groups) != 1 || len(fs) != 7 {
		return fmt.Errorf("host %s has %d groups and %d flavors, want 1 and 7", h.ID, len(pol.Groups), len(fs))
	}
	now := t0.Add(time.Duration(n) * time.Second)
	return s.InTxDeferredSync(ctx, func(tx *Tx) error {
		_, err := tx.CommitReport(ctx, Report{ID: fmt.Sprintf("report-%012d", n), HostID: h.ID, HostName: h.Name,
			Trusted: true, CreatedAt: now, ExpiresAt: now.Add(time.Hour), JSON: fleetFlavor, JWS: "jws"},
			HostReported{Status: "CONNECTED", At: now, Success: true, Boot: &HostBoot{Known: true, ResetCount: 1, State: fleetFlavor[:256]}})
		return err
	})
}
