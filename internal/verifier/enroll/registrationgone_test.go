package enroll

import (
	"context"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/store"
)

// openTPM opens a fresh swtpm, with an EK certificate or without.
func openTPM(t *testing.T, withEKCert bool) *tpm.TPM {
	t.Helper()
	sw := tpmtest.New(t)
	if withEKCert {
		sw = tpmtest.NewWithEKCert(t)
	}
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	return tp
}

// registerEK registers the EK of the agent's TPM as registration id and
// returns the registration's EK digest.
func registerEK(t *testing.T, st *store.Store, a Agent, id string) string {
	t.Helper()
	info, err := a.AKInfo(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	digest, err := ekPublicDigest(info.EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateEKRegistration(t.Context(), store.EKRegistration{ID: id, HardwareUUID: "u",
		EKPublicSHA256: digest, EKPublic: []byte("ek")}); err != nil {
		t.Fatal(err)
	}
	return digest
}

// registeredHost is a store with host H1 registered, and an agent on a
// fresh swtpm (with an EK certificate or without) whose EK is registered
// as reg-1.
func registeredHost(t *testing.T, withEKCert bool) (*store.Store, Agent) {
	t.Helper()
	st := openStore(t)
	registerHosts(t, st, "H1")
	a := akOn(t, openTPM(t, withEKCert), tpm.DefaultAKHandle)
	registerEK(t, st, a, "reg-1")
	return st, a
}

// An operator deletes the registration of a TPM without an EK certificate
// to revoke it. The attack: the host keeps its enrollment, so its quotes
// keep being accepted; or its agent holds an activation challenge issued
// before the deletion and answers it after.
func TestADeletedEKRegistrationStopsTheEnrollmentsItVouchedFor(t *testing.T) {
	ctx := t.Context()
	cfg := Config{AllowRegisteredEKs: true}

	t.Run("the host enrolled with the registration is no longer accepted and cannot enroll again", func(t *testing.T) {
		st, a := registeredHost(t, false)
		e := newEnroller(t, cfg, st, a)
		if _, err := e.Enroll(ctx, "H1"); err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if _, _, err := e.VerifyAK(ctx, "H1"); err != nil {
			t.Fatalf("VerifyAK before the deletion: %v", err)
		}
		if err := st.DeleteEKRegistration(ctx, "reg-1"); err != nil {
			t.Fatal(err)
		}
		wantAKRefused(t, e, "H1", AKNotEnrolled)
		_, err := e.Enroll(ctx, "H1")
		wantRefused(t, err, EKNotRegistered)
		wantAKRefused(t, e, "H1", AKNotEnrolled)
	})

	t.Run("a challenge issued before the deletion and answered after enrolls nothing", func(t *testing.T) {
		st, a := registeredHost(t, false)
		racing := tamperedAgent{Agent: a, activate: func(*evidence.ActivateResponse) error {
			return st.DeleteEKRegistration(context.WithoutCancel(ctx), "reg-1")
		}}
		e := newEnroller(t, cfg, st, racing)
		_, err := e.Enroll(ctx, "H1")
		wantRefused(t, err, EKNotRegistered)
		wantAKRefused(t, e, "H1", AKNotEnrolled)
	})

	t.Run("a host whose ek certificate vouches for it stays enrolled", func(t *testing.T) {
		st, a := registeredHost(t, true)
		e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t), AllowRegisteredEKs: true}, st, a)
		if _, err := e.Enroll(ctx, "H1"); err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if err := st.DeleteEKRegistration(ctx, "reg-1"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.VerifyAK(ctx, "H1"); err != nil {
			t.Errorf("VerifyAK after the registration was deleted: %v", err)
		}
	})
}

// A machine whose host was deleted is registered again under a new host
// id, with the same TPM and the same AK: it enrolls. Before, the deleted
// host's enrollment stayed and its AK name (unique) refused the new one.
func TestTheSameMachineEnrollsUnderANewHostIDOnceItsHostIsDeleted(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	registerHosts(t, st, "A")
	a := akOn(t, openTPM(t, true), tpm.DefaultAKHandle)
	e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t)}, st, a)
	old, err := e.Enroll(ctx, "A")
	if err != nil {
		t.Fatalf("enroll A: %v", err)
	}
	if err := st.DeleteHost(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	wantAKRefused(t, e, "A", AKNotEnrolled)
	registerHosts(t, st, "B")
	enr, err := e.Enroll(ctx, "B")
	if err != nil {
		t.Fatalf("enroll the same machine as B: %v", err)
	}
	if string(enr.AKName) != string(old.AKName) {
		t.Fatal("the machine enrolled another AK, want the same")
	}
	if _, _, err := e.VerifyAK(ctx, "B"); err != nil {
		t.Errorf("VerifyAK(B): %v", err)
	}
	// Registered again under the deleted id, the host is not enrolled.
	registerHosts(t, st, "A")
	wantAKRefused(t, e, "A", AKNotEnrolled)
}
