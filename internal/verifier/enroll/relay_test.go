package enroll

import (
	"context"
	"errors"
	"testing"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/store"
)

// tpmAgent is a hand-written Agent that answers from a TPM directly, for
// whatever host it is asked about: what root on a node can make its agent
// do, relaying the verifier's requests to another node's TPM.
type tpmAgent struct{ node *agent.NodeTPM }

func (a tpmAgent) AKInfo(context.Context, string) (*evidence.AKInfo, error) {
	info, err := a.node.KeyInfo()
	return &info, err
}

func (a tpmAgent) Activate(_ context.Context, _ string, req evidence.ActivateRequest) (*evidence.ActivateResponse, error) {
	secret, err := a.node.ActivateCredential(req.CredentialBlob, req.EncryptedSecret)
	return &evidence.ActivateResponse{Version: evidence.Version, Secret: secret}, err
}

// akOn is an agent on tp answering with the AK at handle, created on first
// use: each handle is another AK under the same EK.
func akOn(t *testing.T, tp *tpm.TPM, handle uint32) tpmAgent {
	t.Helper()
	n, err := agent.NewNodeTPM(tp, tpm.AKOptions{Handle: handle})
	if err != nil {
		t.Fatal(err)
	}
	return tpmAgent{n}
}

func registerHosts(t *testing.T, st *store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := st.CreateHost(t.Context(), store.Host{ID: id, Name: "node-" + id}); err != nil {
			t.Fatal(err)
		}
	}
}

func wantRefused(t *testing.T, err error, reason string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != reason {
		t.Fatalf("Enroll err = %v, want a refusal %s", err, reason)
	}
}

// Root on a compromised node B relays its agent's TPM requests to a
// healthy node A's TPM, where it created a second AK under A's EK. Were the
// enrollment accepted, B's quotes would be A's, and B would be attested
// with A's measurements whatever B booted.
func TestOneTPMCannotBeEnrolledForTwoHosts(t *testing.T) {
	tp, err := tpm.Open(tpmtest.NewWithEKCert(t).Spec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	ctx := t.Context()
	st := openStore(t)
	registerHosts(t, st, "A", "B")
	cfg := Config{EKRoots: swtpmLocalCA(t)}
	enrA, err := newEnroller(t, cfg, st, akOn(t, tp, tpm.DefaultAKHandle)).Enroll(ctx, "A")
	if err != nil {
		t.Fatalf("enroll A: %v", err)
	}
	// The relayed TPM's second AK: another name, the same EK.
	relayed := akOn(t, tp, tpm.DefaultAKHandle+1)
	e := newEnroller(t, cfg, st, relayed)

	t.Run("a second host enrolling with a tpm another host is enrolled with is refused", func(t *testing.T) {
		_, err := e.Enroll(ctx, "B")
		wantRefused(t, err, EKInUse)
		wantAKRefused(t, e, "B", AKNotEnrolled)
	})
	t.Run("the host enrolled with the tpm enrolls again", func(t *testing.T) {
		if _, err := e.Enroll(ctx, "A"); err != nil {
			t.Fatalf("re-enroll A: %v", err)
		}
	})
	t.Run("an ek enrolled for another host while the challenge was answered is refused at the end", func(t *testing.T) {
		registerHosts(t, st, "C")
		racing := tamperedAgent{Agent: relayed, activate: func(*evidence.ActivateResponse) error {
			registerHosts(t, st, "D")
			putEnrollmentAs(t, st, enrA, "D", 0xd, nil)
			return nil
		}}
		other := newEnroller(t, cfg, st, racing)
		if err := st.DeleteHost(ctx, "A"); err != nil {
			t.Fatal(err)
		}
		_, err := other.Enroll(ctx, "C")
		wantRefused(t, err, EKInUse)
		wantAKRefused(t, other, "C", AKNotEnrolled)
	})
	t.Run("an ek another replica enrolled after this one's last check is refused by the store", func(t *testing.T) {
		// Two replicas enroll C and D with the one TPM at the same
		// instant: each reads that no host holds the EK before the other
		// writes. D's replica wrote first; C's read came before that.
		registerHosts(t, st, "C2")
		_, err := newEnroller(t, cfg, staleEKCheck{st}, relayed).Enroll(ctx, "C2")
		wantRefused(t, err, EKInUse)
		wantAKRefused(t, e, "C2", AKNotEnrolled)
	})
	t.Run("once the other hosts are deleted the tpm enrolls under a new host id with a new ak", func(t *testing.T) {
		if err := st.DeleteHost(ctx, "D"); err != nil {
			t.Fatal(err)
		}
		// Deleting A and D deleted their enrollments: the TPM enrolls as B
		// (here with a third AK; TestTheSameMachineEnrollsUnderANewHostIDOnceItsHostIsDeleted
		// enrolls the same one).
		fresh := akOn(t, tp, tpm.DefaultAKHandle+2)
		if _, err := newEnroller(t, cfg, st, fresh).Enroll(ctx, "B"); err != nil {
			t.Fatalf("enroll B after A and D were deleted: %v", err)
		}
	})
}

// staleEKCheck is the store as a replica sees it that read the EK's
// holders just before another replica enrolled a host with it.
type staleEKCheck struct{ *store.Store }

func (staleEKCheck) HostsEnrolledWithEK(context.Context, string, string) ([]string, error) {
	return nil, nil
}
