package hvs

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/report"
)

// TestIntegrationDiskEncryptionFromPCR15 runs HVS with real trust agents on
// swtpm whose root file system sits on LUKS2, and reads disk encryption
// from PCR 15 as systemd-cryptsetup extends it with tpm2-measure-pcr=yes.
func TestIntegrationDiskEncryptionFromPCR15(t *testing.T) {
	tpmtest.Require(t, "swtpm")
	ctx := context.Background()
	b := agentclienttest.NewBus(t)
	d := newRealDeps(t, b, "sqlite:"+filepath.Join(t.TempDir(), "verifier.db"))
	agentc := &tamperingAgent{inner: d.client}
	// The configured PCRs leave out 15: HVS quotes it anyway.
	svc, err := New(ctx, Config{PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, Deps{Store: d.st, Agent: agentc, Enroller: d.enroller, CA: d.ca}, discard)
	if err != nil {
		t.Fatal(err)
	}
	mux := newMux(svc)

	register := func(t *testing.T, id, uuid string) *realNode {
		t.Helper()
		n := startRealNode(t, b, id, uuid, tpmtest.NewWithEKCert(t))
		w := do(t, mux, "POST", "/hvs/v2/hosts", `{"host_name":"`+id+`","connection_string":"intel:nats://`+id+`","flavorgroup_names":["automatic"]}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("register host = %d %s", w.Code, w.Body)
		}
		return n
	}
	baseline := func(t *testing.T, id string) {
		t.Helper()
		w := do(t, mux, "POST", "/hvs/v2/flavors", `{"connection_string":"nats://`+id+`","partial_flavor_types":["PLATFORM","OS","IMA"],"flavorgroup_names":["automatic"]}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("baseline flavors = %d %s", w.Code, w.Body)
		}
	}
	attest := func(t *testing.T, id string) *report.Report {
		t.Helper()
		return postReport(t, mux, id)
	}

	t.Run("a node whose tpm2-measure log replays to PCR 15 is measured", func(t *testing.T) {
		n := register(t, "luks-measured", "0a6b0f43-44a4-4b0d-9d8e-1c2b3a4d5e01")
		mustNil(t, n.root.WritePlatform(true))
		mustNil(t, n.root.MeasurePlatformRootVolume(n.tpm, n.banks))
		baseline(t, n.id)
		r := attest(t, n.id)
		wantTrusted(t, r)
		if r.HostInfo.DiskEncryptionStatus != appraise.DiskEncryptionMeasured || r.HostInfo.Sources["disk_encryption"] != report.SourceMeasured {
			t.Fatalf("disk encryption %q (%s), source %q; want measured", r.HostInfo.DiskEncryptionStatus, r.HostInfo.DiskEncryptionReason, r.HostInfo.Sources["disk_encryption"])
		}
		want := []evidence.CryptVolume{{Name: sandbox.PlatformRootVolume, UUID: sandbox.PlatformRootLUKSUUID}}
		if !slices.Equal(r.HostInfo.MeasuredVolumes, want) {
			t.Errorf("measured volumes %v, want %v", r.HostInfo.MeasuredVolumes, want)
		}
	})

	t.Run("an agent that claims disk encryption with no measurement is only claimed", func(t *testing.T) {
		n := register(t, "luks-claimed", "0a6b0f43-44a4-4b0d-9d8e-1c2b3a4d5e02")
		mustNil(t, n.root.WritePlatform(true))
		baseline(t, n.id)
		r := attest(t, n.id)
		wantTrusted(t, r)
		if !r.HostInfo.DiskEncryption.Enabled {
			t.Fatal("the agent's claim is not in the report")
		}
		if r.HostInfo.DiskEncryptionStatus != appraise.DiskEncryptionClaimed || r.HostInfo.Sources["disk_encryption"] != report.SourceClaimed {
			t.Fatalf("disk encryption %q, source %q; want claimed", r.HostInfo.DiskEncryptionStatus, r.HostInfo.Sources["disk_encryption"])
		}
	})

	t.Run("a forged log whose volume key was never extended into PCR 15 is a fault", func(t *testing.T) {
		n := register(t, "luks-forged", "0a6b0f43-44a4-4b0d-9d8e-1c2b3a4d5e03")
		mustNil(t, n.root.WritePlatform(true))
		baseline(t, n.id)
		digests := map[string][]byte{}
		for _, bank := range n.banks {
			digests[bank] = bytes.Repeat([]byte{0x5a}, map[string]int{evidence.BankSHA256: 32, evidence.BankSHA384: 48, evidence.BankSHA1: 20}[bank])
		}
		mustNil(t, n.root.AppendMeasureLog(15, "volume-key", "cryptsetup:"+sandbox.PlatformRootVolume+":"+sandbox.PlatformRootLUKSUUID, digests))
		r := attest(t, n.id)
		wantUntrusted(t, r, nil, appraise.FaultMeasureLogReplay)
		if r.HostInfo.DiskEncryptionStatus == appraise.DiskEncryptionMeasured {
			t.Fatal("a forged log reads measured")
		}
	})

	t.Run("facts changed on the way from a node without encryption fail the quote", func(t *testing.T) {
		n := register(t, "plain-root", "0a6b0f43-44a4-4b0d-9d8e-1c2b3a4d5e04")
		baseline(t, n.id)
		wantTrusted(t, attest(t, n.id))
		agentc.set(func(r *evidence.QuoteResponse) {
			if r.HostInfo != nil {
				r.HostInfo.DiskEncryption = evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
					Volumes: []evidence.CryptVolume{{Name: "root"}}}
			}
		})
		t.Cleanup(func() { agentc.set(nil) })
		r := attest(t, n.id)
		wantUntrusted(t, r, nil, appraise.FaultQuoteNonce)
	})
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
