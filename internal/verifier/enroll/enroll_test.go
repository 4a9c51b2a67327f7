package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/store"
)

// node is a real trust agent on a swtpm, reachable over a real NATS bus.
type node struct {
	hostID string
	agent  *agentclienttest.Agent
	client *agentclient.Client
}

func startNode(t *testing.T, b *agentclienttest.Bus, hostID string, sw *tpmtest.Swtpm) node {
	t.Helper()
	a := b.StartAgent(t, hostID, sw)
	return node{hostID: hostID, agent: a, client: agentclient.New(b.ServiceConn(t), 10*time.Second)}
}

func TestEnrollWithAnEKCertificate(t *testing.T) {
	b := agentclienttest.NewBus(t)
	n := startNode(t, b, "H1", tpmtest.NewWithEKCert(t))
	ctx := context.Background()

	t.Run("an ak whose ek certificate chains to the local ca is enrolled and trusted", func(t *testing.T) {
		st := openStore(t)
		clk := clock.NewFake(time.Now())
		e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t), Now: clk.Now, AKCertValidity: 24 * time.Hour}, st, n.client)
		enr, err := e.Enroll(ctx, "H1")
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		ak := n.agent.TPM.AK()
		if enr.HostID != "H1" || !bytes.Equal(enr.AKName, ak.Name) || !bytes.Equal(enr.AKPublic, ak.Public) {
			t.Fatalf("enrollment = %+v, want the agent's AK for H1", enr)
		}
		info, err := n.client.AKInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		if len(enr.EKCertificate) == 0 || !bytes.Equal(enr.EKCertificate, info.EKCertificate) {
			t.Error("the enrollment does not keep the EK certificate")
		}
		if want, _ := ekPublicDigest(info.EKPublic); enr.EKPublicSHA256 != want || want == "" {
			t.Errorf("EKPublicSHA256 = %q, want %q", enr.EKPublicSHA256, want)
		}

		cert, err := x509.ParseCertificate(enr.AKCertificate)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(e.PrivacyCARoot())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: clk.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("ak certificate does not chain to the privacy ca: %v", err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: clk.Now()}); err == nil {
			t.Error("ak certificate verifies for TLS server authentication, want it unfit for TLS")
		}
		if cert.Subject.CommonName != "H1" || cert.IsCA || !keysEqual(cert.PublicKey, ak.Key) {
			t.Errorf("ak certificate: CN %q, CA %v, key of the AK %v", cert.Subject.CommonName, cert.IsCA, keysEqual(cert.PublicKey, ak.Key))
		}
		if len(cert.ExtKeyUsage) != 0 || len(cert.UnknownExtKeyUsage) != 1 || !cert.UnknownExtKeyUsage[0].Equal(OIDAKCertificate) {
			t.Errorf("ak certificate key usages %v %v, want only tcg-kp-AIKCertificate", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
		}
		if got := cert.NotAfter.Sub(clk.Now()); got > 24*time.Hour || got < 23*time.Hour {
			t.Errorf("ak certificate valid for %s more, want the configured 24h", got)
		}

		active, err := n.agent.TPM.ActiveBanks()
		if err != nil {
			t.Fatal(err)
		}
		if len(active) == 0 || !slices.Equal(enr.PCRBanks, active) {
			t.Errorf("enrollment records PCR banks %v, want the TPM's %v", enr.PCRBanks, active)
		}

		akPublic, banks, err := e.VerifyAK(ctx, "H1")
		if err != nil {
			t.Fatalf("VerifyAK: %v", err)
		}
		if !bytes.Equal(akPublic, ak.Public) {
			t.Error("VerifyAK does not return the enrolled AK")
		}
		if !slices.Equal(banks, active) {
			t.Errorf("VerifyAK returns PCR banks %v, want the enrolled %v", banks, active)
		}

		t.Run("the ak is no longer accepted once its certificate expired", func(t *testing.T) {
			clk.Advance(25 * time.Hour)
			defer clk.Advance(-25 * time.Hour)
			wantAKRefused(t, e, "H1", AKCertExpired)
		})
		t.Run("an enrollment whose certificate another ca issued is not trusted", func(t *testing.T) {
			other := newEnroller(t, Config{EKRoots: swtpmLocalCA(t), Now: clk.Now}, openStore(t), n.client)
			wantAKRefused(t, other, "H1", AKNotEnrolled) // an empty store
			putEnrollmentAs(t, st, withEK(enr, "H9"), "H9", 0, mustIssue(t, other, ak.Public, "H9"))
			wantAKRefused(t, e, "H9", AKCertUntrusted)
		})
		t.Run("a certificate for another host is not trusted", func(t *testing.T) {
			putEnrollmentAs(t, st, withEK(enr, "H8"), "H8", 8, nil)
			wantAKRefused(t, e, "H8", AKCertUntrusted)
		})
		t.Run("an enrollment whose ak name is not its ak's is not trusted", func(t *testing.T) {
			putEnrollmentAs(t, st, withEK(enr, "H6"), "H6", 6, mustIssue(t, e, ak.Public, "H6"))
			_, _, err := e.VerifyAK(ctx, "H6")
			var ake *AKError
			if !errors.As(err, &ake) || ake.Reason != AKCertUntrusted || !strings.Contains(err.Error(), "name") {
				t.Fatalf("VerifyAK err = %v, want AKCertUntrusted for the name", err)
			}
		})
		t.Run("the host can enroll again and keeps one enrollment", func(t *testing.T) {
			again, err := e.Enroll(ctx, "H1")
			if err != nil {
				t.Fatalf("second Enroll: %v", err)
			}
			if bytes.Equal(again.AKCertificate, enr.AKCertificate) || !bytes.Equal(again.AKName, enr.AKName) {
				t.Error("re-enrollment did not issue a new certificate for the same AK")
			}
		})
		t.Run("an ak enrolled for another host is not enrolled again", func(t *testing.T) {
			st := openStore(t)
			e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t)}, st, n.client)
			if err := st.PutAKEnrollment(ctx, store.AKEnrollment{HostID: "H7", AKName: ak.Name, AKPublic: ak.Public}); err != nil {
				t.Fatal(err)
			}
			_, err := e.Enroll(ctx, "H1")
			if !errors.Is(err, ErrAKInUse) || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Enroll err = %v, want ErrAKInUse", err)
			}
			if _, err := st.AKEnrollmentByHost(ctx, "H1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("H1 got an enrollment (err %v)", err)
			}
		})
		t.Run("the privacy ca persists in the store", func(t *testing.T) {
			again := newEnroller(t, Config{Now: clk.Now}, st, n.client)
			if !again.PrivacyCARoot().Equal(e.PrivacyCARoot()) {
				t.Error("a second Enroller on the same store has another privacy CA")
			}
			if again.PrivacyCARoot().Subject.CommonName != PrivacyCACommonName {
				t.Errorf("privacy CA CN = %q", again.PrivacyCARoot().Subject.CommonName)
			}
		})
	})

	t.Run("the swtpm ek certificate needs its critical tpm san accepted", func(t *testing.T) {
		info, err := n.client.AKInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(info.EKCertificate)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cert.Verify(x509.VerifyOptions{Roots: swtpmLocalCA(t), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if !errors.As(err, new(x509.UnhandledCriticalExtension)) {
			t.Fatalf("plain x509 verification err = %v, want an unhandled critical extension (the TPM SAN)", err)
		}
		if _, err := VerifyEKCertificate(info.EKCertificate, swtpmLocalCA(t), nil, time.Now()); err != nil {
			t.Fatalf("VerifyEKCertificate: %v", err)
		}
	})

	t.Run("an ek ca given as root and intermediate also verifies", func(t *testing.T) {
		tpmtest.EnsureLocalCA(t)
		roots := x509.NewCertPool()
		roots.AddCert(testca.ReadCert(t, tpmtest.LocalCARootCert))
		inter := x509.NewCertPool()
		inter.AddCert(testca.ReadCert(t, tpmtest.LocalCACert))
		e := newEnroller(t, Config{EKRoots: roots, EKIntermediates: inter}, openStore(t), n.client)
		if _, err := e.Enroll(ctx, "H1"); err != nil {
			t.Fatalf("Enroll: %v", err)
		}
	})

	otherEK := otherEKPublic(t)
	tests := []struct {
		name  string
		roots func(t testing.TB) *x509.CertPool
		agent func(real Agent) Agent
		want  string
		// cause, when set, checks the refusal's cause.
		cause func(error) bool
	}{
		{name: "an ek certificate from an unknown ca is refused", roots: otherCA, want: EKCertUntrusted,
			cause: func(err error) bool { var u x509.UnknownAuthorityError; return errors.As(err, &u) }},
		{name: "an ek certificate without any trusted ca is refused", roots: func(testing.TB) *x509.CertPool { return nil }, want: EKCertUntrusted},
		{name: "an ek certificate of another key than the ek is refused", want: EKMismatch,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) { i.EKPublic = otherEK }}
			}},
		{name: "an ek that is no decryption key is refused", want: EKAttributes,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) {
					i.EKPublic = withAttributes(t, i.EKPublic, func(a *tpm2.TPMAObject) { a.Decrypt = false; a.SignEncrypt = true })
				}}
			}},
		{name: "an ak without fixedTPM is refused", want: AKAttributes,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) {
					i.AKPublic = withAttributes(t, i.AKPublic, func(a *tpm2.TPMAObject) { a.FixedTPM = false })
					i.AKName = mustName(t, i.AKPublic)
				}}
			}},
		{name: "an ak that may decrypt is refused", want: AKAttributes,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) {
					i.AKPublic = withAttributes(t, i.AKPublic, func(a *tpm2.TPMAObject) { a.Decrypt = true })
					i.AKName = mustName(t, i.AKPublic)
				}}
			}},
		{name: "an ak public area with trailing bytes is refused", want: AKAttributes,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) { i.AKPublic = append(i.AKPublic, 0) }}
			}},
		{name: "an ak name that is not the name of the ak is refused", want: AKNameMismatch,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, akInfo: func(i *evidence.AKInfo) { i.AKName[len(i.AKName)-1] ^= 1 }}
			}},
		{name: "a wrong activation answer is refused", want: ActivationFailed,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, activate: func(r *evidence.ActivateResponse) error { r.Secret[0] ^= 1; return nil }}
			}},
		{name: "an activation the agent's tpm refuses is refused", want: ActivationFailed,
			agent: func(real Agent) Agent {
				return tamperedAgent{Agent: real, activate: func(*evidence.ActivateResponse) error {
					return &agentclient.AgentError{HostID: "H1", Code: evidence.CodeInternal, Message: "activate credential: TPM_RC_INTEGRITY"}
				}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := swtpmLocalCA(t)
			if tt.roots != nil {
				roots = tt.roots(t)
			}
			var agent Agent = n.client
			if tt.agent != nil {
				agent = tt.agent(n.client)
			}
			st := openStore(t)
			e := newEnroller(t, Config{EKRoots: roots, AllowRegisteredEKs: true}, st, agent)
			_, err := e.Enroll(ctx, "H1")
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Reason != tt.want || refused.HostID != "H1" {
				t.Fatalf("Enroll err = %v, want a refusal for %s", err, tt.want)
			}
			if tt.cause != nil && !tt.cause(refused.Err) {
				t.Errorf("refusal cause = %v", refused.Err)
			}
			if _, err := st.AKEnrollmentByHost(ctx, "H1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after a refusal the store has an enrollment (err %v)", err)
			}
			if _, _, err := e.VerifyAK(ctx, "H1"); err == nil {
				t.Error("VerifyAK accepts the AK of a refused enrollment")
			}
		})
	}

	t.Run("an answered challenge answered again is a replay", func(t *testing.T) {
		e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t)}, openStore(t), n.client)
		id, secret := activate(t, e, n)
		if _, err := e.complete(ctx, "H1", id, secret); err != nil {
			t.Fatalf("first answer: %v", err)
		}
		_, err := e.complete(ctx, "H1", id, secret)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Reason != ChallengeReplayed {
			t.Fatalf("second answer err = %v, want ChallengeReplayed", err)
		}
	})
	t.Run("a challenge answered after its ttl is refused", func(t *testing.T) {
		clk := clock.NewFake(time.Now())
		st := openStore(t)
		e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t), ChallengeTTL: time.Minute, Now: clk.Now}, st, n.client)
		id, secret := activate(t, e, n)
		clk.Advance(time.Minute)
		_, err := e.complete(ctx, "H1", id, secret)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Reason != ChallengeExpired {
			t.Fatalf("late answer err = %v, want ChallengeExpired", err)
		}
		if _, err := st.AKEnrollmentByHost(ctx, "H1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a late answer enrolled the AK (err %v)", err)
		}
	})
	t.Run("a refused activation burns the challenge", func(t *testing.T) {
		e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t)}, openStore(t), n.client)
		info, err := n.client.AKInfo(ctx, "H1")
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := e.challenge(ctx, "H1", info)
		if err != nil {
			t.Fatal(err)
		}
		e.burn(ctx, id)
		_, err = e.complete(ctx, "H1", id, nil)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Reason != ChallengeReplayed {
			t.Fatalf("answer to a burnt challenge err = %v, want ChallengeReplayed", err)
		}
	})
}

func TestEnrollWithARegisteredEK(t *testing.T) {
	b := agentclienttest.NewBus(t)
	n := startNode(t, b, "H2", tpmtest.New(t)) // no EK certificate
	ctx := context.Background()
	info, err := n.client.AKInfo(ctx, "H2")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.EKCertificate) != 0 {
		t.Fatal("the plain swtpm has an EK certificate")
	}
	digest, err := ekPublicDigest(info.EKPublic)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		allow    bool
		register bool
		want     string // refusal reason; "" means enrolled
	}{
		{name: "an ek without certificate is refused when registered eks are not allowed", register: true, want: EKCertUntrusted},
		{name: "an unregistered ek without certificate is refused", allow: true, want: EKNotRegistered},
		{name: "a registered ek without certificate is enrolled", allow: true, register: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			if tt.register {
				if err := st.CreateEKRegistration(ctx, store.EKRegistration{ID: "r1", HardwareUUID: "u", EKPublicSHA256: digest}); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnroller(t, Config{EKRoots: swtpmLocalCA(t), AllowRegisteredEKs: tt.allow}, st, n.client)
			enr, err := e.Enroll(ctx, "H2")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Enroll: %v", err)
				}
				if enr.EKPublicSHA256 != digest || len(enr.EKCertificate) != 0 {
					t.Errorf("enrollment EK digest %q, certificate %d bytes; want %q and none", enr.EKPublicSHA256, len(enr.EKCertificate), digest)
				}
				_, banks, err := e.VerifyAK(ctx, "H2")
				if err != nil {
					t.Errorf("VerifyAK: %v", err)
				}
				if active, _ := n.agent.TPM.ActiveBanks(); len(active) == 0 || !slices.Equal(banks, active) {
					t.Errorf("VerifyAK returns PCR banks %v, want the TPM's %v", banks, active)
				}
				t.Logf("PCR banks of the plain swtpm: %v", banks)
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Reason != tt.want {
				t.Fatalf("Enroll err = %v, want a refusal for %s", err, tt.want)
			}
		})
	}
}

func TestEnrollPassesOnAgentFailures(t *testing.T) {
	cause := &agentclient.RequestError{HostID: "H1", Kind: agentclient.ErrNoResponders}
	e := newEnroller(t, Config{}, openStore(t), failingAgent{err: cause})
	_, err := e.Enroll(context.Background(), "H1")
	var refused *RefusedError
	if !errors.Is(err, agentclient.ErrNoResponders) || errors.As(err, &refused) {
		t.Fatalf("Enroll err = %v, want ErrNoResponders and no refusal", err)
	}
	if _, err := e.Enroll(context.Background(), "not a host"); err == nil {
		t.Fatal("Enroll of a malformed host id succeeded")
	}
}

// activate starts an enrollment of n and has its real TPM answer, without
// completing it: it returns the challenge id and the recovered secret.
func activate(t *testing.T, e *Enroller, n node) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := n.client.AKInfo(ctx, n.hostID)
	if err != nil {
		t.Fatal(err)
	}
	id, req, err := e.challenge(ctx, n.hostID, info)
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	resp, err := n.client.Activate(ctx, n.hostID, req)
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	return id, resp.Secret
}

// withAttributes returns the public area with its object attributes changed.
func withAttributes(t *testing.T, public []byte, change func(*tpm2.TPMAObject)) []byte {
	t.Helper()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		t.Fatal(err)
	}
	change(&pub.ObjectAttributes)
	return tpm2.Marshal(pub)
}

func mustName(t *testing.T, public []byte) []byte {
	t.Helper()
	name, err := credential.Name(public)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// otherEKPublic is the RSA EK public area of another TPM.
func otherEKPublic(t *testing.T) []byte {
	t.Helper()
	tp, err := tpm.Open(tpmtest.New(t).Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	ek, err := tp.EK(tpm.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	return ek.Public
}

// mustIssue issues an AK certificate from e's privacy CA.
func mustIssue(t *testing.T, e *Enroller, akPublic []byte, hostID string) []byte {
	t.Helper()
	cert, err := e.ca.issueAK(mustPublicKey(t, akPublic), hostID, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Raw
}

// mustPublicKey is the key of a TPMT_PUBLIC.
func mustPublicKey(t testing.TB, public []byte) crypto.PublicKey {
	t.Helper()
	pub, err := decodePublic(public)
	if err != nil {
		t.Fatal(err)
	}
	key, err := publicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// wantAKRefused checks that e does not accept the AK of host, for reason.
func wantAKRefused(t *testing.T, e *Enroller, host, reason string) {
	t.Helper()
	_, _, err := e.VerifyAK(t.Context(), host)
	var ake *AKError
	if !errors.As(err, &ake) || ake.Reason != reason {
		t.Fatalf("VerifyAK(%s) err = %v, want %s", host, err, reason)
	}
}

// putEnrollmentAs stores a copy of enr for host, with an AK name whose
// digest is 32 bytes of nameByte and, unless nil, the AK certificate cert.
// withEK is enr with an EK digest of its own, made of seed: a row planted
// for another host cannot share the EK of enr's (one EK enrolls one host).
func withEK(enr store.AKEnrollment, seed string) store.AKEnrollment {
	sum := sha256.Sum256([]byte(seed))
	enr.EKPublicSHA256 = hex.EncodeToString(sum[:])
	return enr
}

func putEnrollmentAs(t *testing.T, st interface {
	PutAKEnrollment(context.Context, store.AKEnrollment) error
}, enr store.AKEnrollment, host string, nameByte byte, cert []byte) {
	t.Helper()
	enr.HostID = host
	enr.AKName = append([]byte{0, 0x0b}, bytes.Repeat([]byte{nameByte}, 32)...)
	if cert != nil {
		enr.AKCertificate = cert
	}
	if err := st.PutAKEnrollment(t.Context(), enr); err != nil {
		t.Fatal(err)
	}
}
