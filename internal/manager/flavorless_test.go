package manager

import (
	"context"
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
)

func TestFlavorless(t *testing.T) {
	missing := func() *reportBuilder {
		b := newReport("h").flavorsMissing(flavor.PartPlatform, flavor.PartOS)
		delete(b.r.TrustInformation.FlavorsTrust, flavor.PartIMA)
		return b
	}
	tests := []struct {
		name   string
		report *report.Report
		want   bool
	}{
		{"a report whose only faults are FlavorMissing is flavorless", missing().build(), true},
		{"a report with one part missing and the others trusted is flavorless", newReport("h").flavorsMissing(flavor.PartOS).build(), true},
		{"a report with no part evaluated is flavorless", newReport("h").untrustedParts().build(), true},
		{"a trusted report is not flavorless", newReport("h").build(), false},
		{"a missing flavor beside a failing part is not flavorless", missing().failPart(flavor.PartIMA).build(), false},
		{"a missing flavor beside an evidence fault is not flavorless", missing().fault("QuoteSignatureInvalid").build(), false},
		{"a missing flavor with Secure Boot read off is not flavorless", missing().secureBoot(false).build(), false},
		{"a report without a quote is not flavorless", func() *report.Report {
			r := missing().build()
			r.HostStatus = report.StatusConnectionFailure
			return r
		}(), false},
		{"a FlavorMissing fault under another rule is not flavorless", func() *report.Report {
			r := missing().build()
			pt := r.TrustInformation.FlavorsTrust[flavor.PartOS]
			pt.Rules[0].Rule.Name = flavor.RulePcrMatchesConstant
			return r
		}(), false},
		{"the rule RequiredFlavorTypeExists with another fault is not flavorless", func() *report.Report {
			r := missing().build()
			r.TrustInformation.FlavorsTrust[flavor.PartOS].Rules[0].Faults[0].Name = flavor.FaultPcrValueMismatch
			return r
		}(), false},
		{"an untrusted part without rules is not flavorless", func() *report.Report {
			r := missing().build()
			r.TrustInformation.FlavorsTrust[flavor.PartOS] = flavor.PartTrust{}
			return r
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flavorless(tt.report); got != tt.want {
				t.Fatalf("flavorless = %v, want %v (%+v)", got, tt.want, tt.report.TrustInformation)
			}
		})
	}
}

// TestAReportMadeBeforeTheHostsFlavorsIsNotActedOn plays the race of the
// replicas failover test: the verifier attests a newly registered host (its
// refresh, or an agent event) before the host has flavors; the flavors come
// after; the manager's first reconcile reads that report. It must not fail
// the node on it, and a host that truly has no flavors must still fail, on
// a report made after the one it skipped.
func TestAReportMadeBeforeTheHostsFlavorsIsNotActedOn(t *testing.T) {
	tests := []struct {
		name    string
		policy  GoldenFlavors
		flavors bool // the host has flavors by the time the manager reads
		want    cluster.Status
	}{
		{"provided flavors imported after the verifier's first report: the node is Verified", Provided, true, cluster.StatusVerified},
		{"firstBoot flavors made since by another replica's baseline: the node is Verified", FirstBoot, true, cluster.StatusVerified},
		{"everyBoot flavors made since by another replica's baseline: the node is Verified", EveryBoot, true, cluster.StatusVerified},
		{"provided and still no flavors: the node fails, on the fresh report", Provided, false, cluster.StatusAttestationFailed},
		{"firstBoot and still no flavors: the node is baselined and Verified", FirstBoot, false, cluster.StatusVerified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{GoldenFlavors: tt.policy}, 1)
			if _, err := e.v.RegisterHost(context.Background(), "edge-1", hostID(1)); err != nil {
				t.Fatal(err)
			}
			early := e.v.publish(hostID(1))
			if !flavorless(early) {
				t.Fatalf("the verifier's first report is not flavorless: %+v", early.TrustInformation)
			}
			if tt.flavors {
				e.v.set(hostID(1), func(h *simHost) { h.baseline = h.measurements })
			}
			e.tick()
			e.wantStatus("edge-1", tt.want)
			if got := e.nodes.get("edge-1").LastReport; got == early.ID || got == "" {
				t.Fatalf("the node names report %q; want one made after %s", got, early.ID)
			}
			switch tt.want {
			case cluster.StatusVerified:
				if n := e.nodes.count("failed"); n != 0 {
					t.Fatalf("the node was failed %d times: %v", n, e.nodes.calls)
				}
			default:
				if len(e.nodes.failed) != 1 || !slices.Equal(e.nodes.failed[0].parts, []string{"OS", "PLATFORM"}) {
					t.Fatalf("MarkFailed calls %+v, want one naming OS and PLATFORM", e.nodes.failed)
				}
			}
		})
	}
}

// TestAPublishedReportMadeWithoutFlavorsIsNotActedOn: the verifier
// publishes a report it appraised before the host's flavors were (re)made,
// while the manager already verified the node with them.
func TestAPublishedReportMadeWithoutFlavorsIsNotActedOn(t *testing.T) {
	for _, policy := range []GoldenFlavors{EveryBoot, Provided} {
		t.Run("with "+string(policy)+" flavors the node stays Verified on a fresh report", func(t *testing.T) {
			e := newEnv(t, Config{GoldenFlavors: policy}, 1)
			if policy == Provided {
				e.v.set(hostID(1), func(h *simHost) { h.baseline = 0 })
			}
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)
			reports := e.v.count("report")
			late := newReport(hostID(1)).id("late").at(e.now()).flavorsMissing(flavor.PartPlatform, flavor.PartOS).build()
			late.ResetCount = 7
			e.v.put(late)
			e.m.ReportPublished(hostID(1))
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)
			if e.nodes.count("failed") != 0 || e.nodes.get("edge-1").Cordoned {
				t.Fatalf("acted on the report made without flavors: %v", e.nodes.calls)
			}
			if got := e.v.count("report"); got != reports+1 {
				t.Fatalf("reports made = %d, want one fresh report", got-reports)
			}
			if got := e.nodes.get("edge-1").LastReport; got == late.ID {
				t.Fatalf("the node names the report made without flavors")
			}
		})
	}
}

// TestAPublishedReportWithAnotherFaultIsActedOnAtOnce: a missing flavor is
// no way to skip a real failure found in the same report.
func TestAPublishedReportWithAnotherFaultIsActedOnAtOnce(t *testing.T) {
	missing := func(id string) *reportBuilder {
		return newReport(hostID(1)).id(id).flavorsMissing(flavor.PartPlatform, flavor.PartOS)
	}
	tests := []struct {
		name   string
		report *reportBuilder
		want   cluster.Status
	}{
		{"an IMA failure beside missing flavors fails the node", missing("ima").failPart(flavor.PartIMA), cluster.StatusAttestationFailed},
		{"Secure Boot off beside missing flavors is Secure Boot Disabled", missing("sb").secureBoot(false), cluster.StatusSecureBootDisabled},
		{"an evidence fault beside missing flavors fails the node", missing("quote").fault("QuoteSignatureInvalid"), cluster.StatusAttestationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, 1)
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)
			reports := e.v.count("report")
			r := tt.report.at(e.now()).build()
			r.ResetCount = 7
			e.v.put(r)
			e.m.ReportPublished(hostID(1))
			e.tick()
			e.wantStatus("edge-1", tt.want)
			if got := e.nodes.get("edge-1").LastReport; got != r.ID {
				t.Fatalf("acted on report %q, want the published %q", got, r.ID)
			}
			if got := e.v.count("report"); got != reports {
				t.Fatalf("%d reports made instead of acting on the published one", got-reports)
			}
		})
	}
}
