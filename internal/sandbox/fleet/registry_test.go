package fleet_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

func newRegistry(t *testing.T, nodes ...string) *fleet.Registry {
	t.Helper()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := fleet.NewRegistry(func() time.Time { return now })
	for _, n := range nodes {
		r.Add(n, n)
	}
	return r
}

func kinds(acts []fleet.Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

func TestRegistryActsAsTheKubernetesAdapter(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		steps func(r *fleet.Registry) error
		check func(t *testing.T, r *fleet.Registry)
	}{
		{
			name: "a failed node is cordoned, tainted, unlabelled ready and gets a Warning event",
			steps: func(r *fleet.Registry) error {
				if err := r.MarkVerified(ctx, "n1", true, "r1", "ok"); err != nil {
					return err
				}
				_, err := r.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r2", "attestation failed")
				return err
			},
			check: func(t *testing.T, r *fleet.Registry) {
				info, _ := r.Get(ctx, "n1")
				if !info.Cordoned || !info.CordonedByUs || info.Ready || info.Status != cluster.StatusAttestationFailed || info.LastReport != "r2" {
					t.Errorf("node %+v", info)
				}
				if got := r.Taints("n1"); !slices.Equal(got, []string{cluster.TaintUntrusted + ":NoSchedule"}) {
					t.Errorf("taints %v", got)
				}
				c, _ := r.Condition("n1")
				if c.Status != "False" || c.Reason != cluster.ReasonAttestationFailed || c.Message != "attestation failed (failed: IMA)" {
					t.Errorf("condition %+v", c)
				}
				ev := r.Events("n1")
				if len(ev) != 2 || ev[1].Type != "Warning" || ev[1].Note != "attestation failed; failed: IMA; report r2" {
					t.Errorf("events %+v", ev)
				}
			},
		},
		{
			name: "marking a node failed twice with the same report changes nothing",
			steps: func(r *fleet.Registry) error {
				if _, err := r.MarkFailed(ctx, "n1", cluster.StatusSecureBootDisabled, nil, "r1", "sb off"); err != nil {
					return err
				}
				changed, err := r.MarkFailed(ctx, "n1", cluster.StatusSecureBootDisabled, nil, "r1", "sb off")
				if changed {
					return errors.New("second MarkFailed changed the node")
				}
				return err
			},
			check: func(t *testing.T, r *fleet.Registry) {
				if n := len(r.Events("n1")); n != 1 {
					t.Errorf("%d events, want 1", n)
				}
				if n := slices.Index(kinds(r.Actions("n1")), fleet.ActionCordon); n < 0 {
					t.Error("no cordon")
				}
			},
		},
		{
			name: "a verified report does not uncordon a failed node",
			steps: func(r *fleet.Registry) error {
				if _, err := r.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r1", "x"); err != nil {
					return err
				}
				return r.MarkVerified(ctx, "n1", true, "r2", "ok")
			},
			check: func(t *testing.T, r *fleet.Registry) {
				info, _ := r.Get(ctx, "n1")
				if !info.Cordoned || info.Status != cluster.StatusVerified || len(r.Taints("n1")) != 1 {
					t.Errorf("node %+v taints %v: want verified, still cordoned and tainted", info, r.Taints("n1"))
				}
			},
		},
		{
			name: "onboarding lifts the cordon and the taint and records Onboarded",
			steps: func(r *fleet.Registry) error {
				if _, err := r.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r1", "x"); err != nil {
					return err
				}
				if err := r.RequestOnboard("n1"); err != nil {
					return err
				}
				return r.Onboarded(ctx, "n1", true, "r2")
			},
			check: func(t *testing.T, r *fleet.Registry) {
				info, _ := r.Get(ctx, "n1")
				if info.Cordoned || info.CordonedByUs || info.OnboardRequested || !info.Ready || len(r.Taints("n1")) != 0 {
					t.Errorf("node %+v taints %v", info, r.Taints("n1"))
				}
				ev := r.Events("n1")
				if last := ev[len(ev)-1]; last.Reason != cluster.ReasonOnboarded || last.Note != "re-onboarded after a passing attestation; uncordoned; report r2" {
					t.Errorf("last event %+v", last)
				}
			},
		},
		{
			name: "pending neither cordons nor changes a status label",
			steps: func(r *fleet.Registry) error {
				if err := r.MarkVerified(ctx, "n1", false, "r1", "ok"); err != nil {
					return err
				}
				return r.Pending(ctx, "n1", cluster.ReasonVerifierUnreachable, "down")
			},
			check: func(t *testing.T, r *fleet.Registry) {
				info, _ := r.Get(ctx, "n1")
				c, _ := r.Condition("n1")
				if info.Cordoned || info.Status != cluster.StatusVerified || c.Status != "Unknown" {
					t.Errorf("node %+v condition %+v", info, c)
				}
			},
		},
		{
			name: "a node that is not registered is not found",
			steps: func(r *fleet.Registry) error {
				err := r.MarkVerified(ctx, "ghost", true, "r1", "ok")
				if !errors.Is(err, cluster.ErrNodeNotFound) {
					return errors.New("want ErrNodeNotFound, got " + errString(err))
				}
				return nil
			},
			check: func(*testing.T, *fleet.Registry) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, "n1", "n2")
			if err := tt.steps(r); err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			if acts := r.Actions("n2"); len(acts) != 0 {
				t.Errorf("bystander n2 was acted on: %v", acts)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
