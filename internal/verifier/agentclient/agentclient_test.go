package agentclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
)

func TestClientWithARealAgent(t *testing.T) {
	sw := tpmtest.New(t)
	b := agentclienttest.NewBus(t)
	a := b.StartAgent(t, "H1", sw)
	c := agentclient.New(b.ServiceConn(t), 10*time.Second)
	ctx := context.Background()

	t.Run("the version names the agent's version", func(t *testing.T) {
		v, err := c.Version(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		if v.AgentVersion != "test" || v.Version != evidence.Version {
			t.Fatalf("Version = %+v, want agent version test", v)
		}
	})
	t.Run("the host info carries the host name and the tpm", func(t *testing.T) {
		hi, err := c.HostInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		if hi.HostName != "node-H1" || !hi.TPM.Present || hi.TPM.Version != "2.0" {
			t.Fatalf("HostInfo = host %q, tpm %+v; want node-H1 with a TPM 2.0", hi.HostName, hi.TPM)
		}
	})
	t.Run("the ak info is the agent's ak and ek", func(t *testing.T) {
		info, err := c.AKInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(info.AKPublic, a.TPM.AK().Public) || !bytes.Equal(info.AKName, a.TPM.AK().Name) {
			t.Fatal("AKInfo does not carry the agent's AK")
		}
		name, err := credential.Name(info.AKPublic)
		if err != nil || !bytes.Equal(name, info.AKName) {
			t.Fatalf("AK name %x does not match its public area (%x, %v)", info.AKName, name, err)
		}
		if len(info.EKPublic) == 0 {
			t.Fatal("AKInfo has no EK public area")
		}
	})
	t.Run("a quote carries the nonce bound to the host facts and the pcr values", func(t *testing.T) {
		nonce := make([]byte, evidence.NonceSize)
		_, _ = rand.Read(nonce)
		q, err := c.Quote(ctx, "H1", evidence.QuoteRequest{Nonce: nonce, PCRs: []int{0, 7}, Banks: []string{evidence.BankSHA256}})
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Attest) == 0 || len(q.Signature) == 0 || len(q.PCRs) != 2 {
			t.Fatalf("Quote: %d attest bytes, %d signature bytes, %d pcrs; want a signed quote of 2 pcrs", len(q.Attest), len(q.Signature), len(q.PCRs))
		}
		// The quote's extraData binds the nonce and the host facts sent with it.
		if !bytes.Contains(q.Attest, evidence.QualifyingData(nonce, q.HostInfo)) {
			t.Fatal("the attestation does not carry the nonce bound to the host facts")
		}
		if bytes.Contains(q.Attest, nonce) {
			t.Fatal("the attestation carries the bare nonce, not the nonce bound to the host facts")
		}
	})
	t.Run("credential activation returns the sealed secret", func(t *testing.T) {
		info, err := c.AKInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		secret := []byte("thirty-two bytes of test secret!")
		blob, enc, err := credential.MakeCredential(info.EKPublic, info.AKName, secret)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Activate(ctx, "H1", evidence.ActivateRequest{CredentialBlob: blob, EncryptedSecret: enc})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.Secret, secret) {
			t.Fatalf("Activate secret = %x, want %x", resp.Secret, secret)
		}
	})
	t.Run("an activation the tpm refuses is an agent error", func(t *testing.T) {
		_, err := c.Activate(ctx, "H1", evidence.ActivateRequest{CredentialBlob: []byte{0, 1, 2}, EncryptedSecret: []byte{3, 4}})
		var ae *agentclient.AgentError
		if !errors.As(err, &ae) || ae.Code != evidence.CodeInternal || ae.HostID != "H1" || ae.Request != bus.ActivateCredential {
			t.Fatalf("Activate err = %v, want an *AgentError with code %s", err, evidence.CodeInternal)
		}
	})
	t.Run("an invalid quote request is refused before it is sent", func(t *testing.T) {
		_, err := c.Quote(ctx, "H1", evidence.QuoteRequest{PCRs: []int{0}, Banks: []string{evidence.BankSHA256}})
		var re *agentclient.RequestError
		var ae *agentclient.AgentError
		if err == nil || errors.As(err, &re) || errors.As(err, &ae) {
			t.Fatalf("Quote without a nonce: err = %v, want a validation error", err)
		}
	})
}

func TestClientTransportFailures(t *testing.T) {
	b := agentclienttest.NewBus(t)
	c := agentclient.New(b.ServiceConn(t), 300*time.Millisecond)

	// respond answers every request to hostID with reply; a nil reply means
	// the subscriber stays silent.
	respond := func(t *testing.T, hostID string, reply []byte) {
		nc := b.AgentConn(t, hostID)
		subject, err := bus.AgentRequests(hostID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
			if reply != nil {
				_ = m.Respond(reply)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	respond(t, "silent", nil)
	respond(t, "garbled", []byte(`{"version":"tc/v1","agent_version":"1","surprise":true}`))
	respond(t, "oldversion", []byte(`{"version":"tc/v0","agent_version":"1"}`))
	respond(t, "notjson", []byte(`<html>`))
	respond(t, "noak", []byte(`{"version":"tc/v1","error":{"code":"AIK_NOT_PROVISIONED","message":"no ak yet"}}`))

	tests := []struct {
		name, hostID string
		ctx          func() (context.Context, context.CancelFunc)
		wantKind     error
		wantCode     string
	}{
		{name: "a host without an agent has no responders", hostID: "offline", wantKind: agentclient.ErrNoResponders},
		{name: "an agent that stays silent times out", hostID: "silent", wantKind: agentclient.ErrTimeout},
		{name: "a caller's deadline shorter than the timeout is a timeout too", hostID: "silent", wantKind: agentclient.ErrTimeout,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "a reply with an unknown field is a bad reply", hostID: "garbled", wantKind: agentclient.ErrBadReply},
		{name: "a reply of another wire version is a bad reply", hostID: "oldversion", wantKind: agentclient.ErrBadReply},
		{name: "a reply that is not json is a bad reply", hostID: "notjson", wantKind: agentclient.ErrBadReply},
		{name: "an error in the reply is an agent error with its code", hostID: "noak", wantCode: evidence.CodeAKMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err := c.Version(ctx, tt.hostID)
			if tt.wantCode != "" {
				var ae *agentclient.AgentError
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("err = %v, want an *AgentError with code %s", err, tt.wantCode)
				}
				return
			}
			var re *agentclient.RequestError
			if !errors.Is(err, tt.wantKind) || !errors.As(err, &re) || re.HostID != tt.hostID || re.Request != bus.VersionRequest {
				t.Fatalf("err = %v, want a *RequestError for %s wrapping %v", err, tt.hostID, tt.wantKind)
			}
		})
	}

	t.Run("a cancelled request is no timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.AKInfo(ctx, "silent")
		if !errors.Is(err, context.Canceled) || errors.Is(err, agentclient.ErrTimeout) {
			t.Fatalf("err = %v, want context.Canceled and not ErrTimeout", err)
		}
	})
	t.Run("a host id that is no subject token is refused", func(t *testing.T) {
		_, err := c.HostInfo(context.Background(), "a.b")
		if !errors.Is(err, bus.ErrInvalidHostID) {
			t.Fatalf("err = %v, want ErrInvalidHostID", err)
		}
	})
}

// TestAnAgentThatSubscribesWithinTheGraceIsReached plays an agent
// reconnecting to another verifier replica's NATS server: it is not
// subscribed when the request is sent, and subscribes half a second later.
// The request reaches it; an agent that never comes is reported unreachable
// after the grace.
func TestAnAgentThatSubscribesWithinTheGraceIsReached(t *testing.T) {
	b := agentclienttest.NewBus(t)
	c := agentclient.New(b.ServiceConn(t), 10*time.Second)
	nc := b.AgentConn(t, "late")
	go func() {
		time.Sleep(500 * time.Millisecond)
		subj, _ := bus.AgentRequests("late")
		_, _ = nc.Subscribe(subj, func(m *nats.Msg) {
			_ = m.Respond([]byte(`{"version":"tc/v1","agent_version":"late"}`))
		})
	}()
	v, err := c.Version(context.Background(), "late")
	if err != nil || v.AgentVersion != "late" {
		t.Fatalf("Version of an agent subscribing after 0.5 s = %+v, %v; want its answer", v, err)
	}
	start := time.Now()
	_, err = c.Version(context.Background(), "never")
	if !errors.Is(err, agentclient.ErrNoResponders) || time.Since(start) < agentclient.NoRespondersGrace {
		t.Errorf("Version of an absent agent = %v after %s, want no responders after %s", err, time.Since(start), agentclient.NoRespondersGrace)
	}
}
