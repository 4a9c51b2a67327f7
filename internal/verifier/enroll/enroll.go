// Package enroll is the verifier's privacy CA: it enrolls a host's attestation
// key (AK) and tells HVS which AK a host's quotes must be signed by.
//
// Enrollment is trust decision 1 of the architecture: the AK is bound to the
// node's TPM. Enroller.Enroll asks the host's trust agent for its AK and EK,
// then
//
//  1. checks the EK: its certificate chains to a trusted EK CA (Config.EKRoots)
//     and certifies the very key of the EK's public area; or, without a
//     certificate, an operator registered the EK's public key in advance
//     (POST /hvs/v2/tpm-endorsements) and Config.AllowRegisteredEKs is set;
//     and no other registered host is enrolled with that EK (one TPM attests
//     one host);
//  2. checks the AK: a restricted signing key that never leaves its TPM
//     (fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt), whose TPM name
//     is the name of its public area;
//  3. seals a fresh secret to the EK and the AK name (TPM2_MakeCredential) and
//     sends it to the agent: only a TPM that holds both the EK and a loaded
//     key of that name can recover it (TPM2_ActivateCredential). The secret's
//     digest is kept as a single-use, short-lived challenge in the store;
//  4. when the secret comes back, checks the EK again (its registration may
//     have been deleted meanwhile), issues an AK certificate signed by the
//     privacy CA and stores the enrollment (without an EK certificate, only
//     while its registration is: store.PutRegisteredAKEnrollment).
//
// An enrollment goes with what vouched for it: deleting the host deletes it,
// and deleting an EK registration deletes the enrollments without an EK
// certificate of that EK (package store), so the host's quotes are refused
// (AKNotEnrolled) until it enrolls again.
//
// Each refusal is a *RefusedError with a Reason; a refusal changes nothing in
// the store but the consumed challenge. Enroller.VerifyAK is what HVS calls
// before it accepts a quote (the AikCertificateTrusted rule).
//
// The privacy CA is an ECDSA P-384 key and self-signed certificate created on
// first start and kept in the store's secrets, so that every replica shares it.
package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Agent is what enrollment needs of a host's trust agent;
// *agentclient.Client is one.
type Agent interface {
	AKInfo(ctx context.Context, hostID string) (*evidence.AKInfo, error)
	Activate(ctx context.Context, hostID string, req evidence.ActivateRequest) (*evidence.ActivateResponse, error)
}

// Store is the persistence enrollment needs; *store.Store is one.
type Store interface {
	GetSecret(ctx context.Context, name string) ([]byte, error)
	CreateSecret(ctx context.Context, name string, value []byte) error

	CreateEKRegistration(ctx context.Context, r store.EKRegistration) error
	EKRegistrationByDigest(ctx context.Context, digest string) (store.EKRegistration, error)
	HostsEnrolledWithEK(ctx context.Context, hostID, ekDigest string) ([]string, error)
	ListEKRegistrations(ctx context.Context) ([]store.EKRegistration, error)
	DeleteEKRegistration(ctx context.Context, id string) error

	CreateChallenge(ctx context.Context, c store.ActivationChallenge) error
	ConsumeChallenge(ctx context.Context, id string, now time.Time) (store.ActivationChallenge, error)

	PutAKEnrollment(ctx context.Context, e store.AKEnrollment) error
	PutRegisteredAKEnrollment(ctx context.Context, e store.AKEnrollment) error
	AKEnrollmentByHost(ctx context.Context, hostID string) (store.AKEnrollment, error)
}

// Config configures an Enroller.
type Config struct {
	// EKRoots are the trusted EK CAs (the TPM manufacturers' bundles). An EK
	// certificate must chain to one of them. nil trusts no EK certificate.
	EKRoots *x509.CertPool
	// EKIntermediates are intermediate CAs that may complete a chain from an
	// EK certificate to EKRoots; optional.
	EKIntermediates *x509.CertPool
	// AllowRegisteredEKs accepts an EK without a certificate when an operator
	// registered its public key (POST /hvs/v2/tpm-endorsements).
	AllowRegisteredEKs bool
	// ChallengeTTL is how long an activation challenge may be answered
	// (default 2 minutes).
	ChallengeTTL time.Duration
	// AKCertValidity is the validity of an issued AK certificate (default 1
	// year; never past the privacy CA's).
	AKCertValidity time.Duration
	// PrivacyCAValidity is the validity of a privacy CA created on first
	// start (default 10 years).
	PrivacyCAValidity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AKCacheEntries bounds the enrollments whose verified AK certificate
	// chain VerifyAK keeps, so that it verifies a chain once per enrollment
	// rather than at every report (default 65536).
	AKCacheEntries int
}

const (
	defaultChallengeTTL      = 2 * time.Minute
	defaultAKCertValidity    = 365 * 24 * time.Hour
	defaultPrivacyCAValidity = 10 * 365 * 24 * time.Hour
	// secretSize is the size of the activation secret. It fits the digest of
	// every EK name algorithm (SHA-256 and up).
	secretSize = 32
)

func (c *Config) validate() error {
	var errs []error
	errs = append(errs, config.DefaultDurations("enroll config",
		config.Duration("ChallengeTTL", &c.ChallengeTTL, defaultChallengeTTL),
		config.Duration("AKCertValidity", &c.AKCertValidity, defaultAKCertValidity),
		config.Duration("PrivacyCAValidity", &c.PrivacyCAValidity, defaultPrivacyCAValidity)))
	switch {
	case c.AKCacheEntries < 0:
		errs = append(errs, fmt.Errorf("enroll config: AKCacheEntries must not be negative, got %d", c.AKCacheEntries))
	case c.AKCacheEntries == 0:
		c.AKCacheEntries = defaultAKCacheEntries
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// Reasons of a refused enrollment (RefusedError.Reason).
const (
	// EKCertUntrusted: the EK certificate does not parse or does not chain to
	// a trusted EK CA, or there is none and registered EKs are not allowed.
	EKCertUntrusted = "EKCertUntrusted"
	// EKNotRegistered: the EK has no certificate and its public key is not registered.
	EKNotRegistered = "EKNotRegistered"
	// EKMismatch: the EK certificate certifies another key than the EK's public area.
	EKMismatch = "EKMismatch"
	// EKAttributes: the EK public area is not a restricted decryption key of the TPM.
	EKAttributes = "EKAttributes"
	// AKAttributes: the AK is not a restricted, TPM-bound signing key.
	AKAttributes = "AKAttributes"
	// AKNameMismatch: the AK name is not the name of the AK public area.
	AKNameMismatch = "AKNameMismatch"
	// ActivationFailed: the agent did not recover the sealed secret.
	ActivationFailed = "ActivationFailed"
	// ChallengeReplayed: the activation challenge was answered before.
	ChallengeReplayed = "ChallengeReplayed"
	// ChallengeExpired: the activation challenge expired before it was answered.
	ChallengeExpired = "ChallengeExpired"
	// EKInUse: another registered host is enrolled with the same EK. One TPM
	// attests one host; otherwise a node could relay its TPM requests to a
	// healthy node's TPM (a second AK under its EK) and be attested with
	// that node's measurements.
	EKInUse = "EKInUse"
)

// RefusedError is an enrollment refused on the evidence: the host's TPM or
// its answer did not prove what trust decision 1 requires.
type RefusedError struct {
	HostID string
	// Reason is one of the reason constants (EKCertUntrusted, ...).
	Reason string
	// Detail says what exactly failed; it is safe to show the operator.
	Detail string
	// Err is the cause, if any.
	Err error
}

func (e *RefusedError) Error() string {
	return withCause(fmt.Sprintf("ak enrollment of host %q refused: %s: %s", e.HostID, e.Reason, e.Detail), e.Err)
}

// withCause appends the text of cause, when there is one, to msg.
func withCause(msg string, cause error) string {
	if cause != nil {
		return msg + ": " + cause.Error()
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return e.Err }

// ErrAKInUse reports an AK enrolled for another host; it wraps store.ErrConflict.
var ErrAKInUse = fmt.Errorf("the attestation key is enrolled for another host: %w", store.ErrConflict)

// Log field keys.
const (
	keyHost   = "host_id"
	keyAKName = "ak_name"
	keyReason = "reason"
	keyError  = "error"
	keySecret = "secret"
	keyUntil  = "not_after"
)

// Enroller enrolls AKs and answers which AK a host's quotes must be signed by.
// It is safe for concurrent use.
type Enroller struct {
	cfg    Config
	store  Store
	agent  Agent
	logger *slog.Logger
	ca     *privacyCA

	akCache *akCache
	// akVerifications counts the AK certificate chains verified (tests).
	akVerifications atomic.Int64
}

// New returns an Enroller. It loads the privacy CA from the store's secrets,
// creating it on first start.
func New(ctx context.Context, cfg Config, st Store, agent Agent, logger *slog.Logger) (*Enroller, error) {
	if st == nil || agent == nil || logger == nil {
		return nil, errors.New("enroll: store, agent and logger are required")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Enroller{cfg: cfg, store: st, agent: agent, logger: logger, akCache: newAKCache(cfg.AKCacheEntries)}
	ca, err := e.loadOrCreateCA(ctx)
	if err != nil {
		return nil, err
	}
	e.ca = ca
	return e, nil
}

// PrivacyCARoot is the privacy CA's certificate, the root of every AK certificate.
func (e *Enroller) PrivacyCARoot() *x509.Certificate { return e.ca.cert }

// Enroll enrolls the AK of hostID's TPM (see the package documentation). A
// refusal is a *RefusedError; an unreachable agent an *agentclient.RequestError;
// an AK already enrolled for another host ErrAKInUse.
func (e *Enroller) Enroll(ctx context.Context, hostID string) (store.AKEnrollment, error) {
	if err := bus.ValidateHostID(hostID); err != nil {
		return store.AKEnrollment{}, err
	}
	info, err := e.agent.AKInfo(ctx, hostID)
	if err != nil {
		return store.AKEnrollment{}, fmt.Errorf("ak info of host %q: %w", hostID, err)
	}
	id, req, err := e.challenge(ctx, hostID, info)
	if err != nil {
		return store.AKEnrollment{}, e.logRefusal(ctx, err)
	}
	resp, err := e.agent.Activate(ctx, hostID, req)
	if err != nil {
		e.burn(ctx, id)
		var ae *agentclient.AgentError
		if errors.As(err, &ae) {
			return store.AKEnrollment{}, e.logRefusal(ctx, &RefusedError{HostID: hostID, Reason: ActivationFailed,
				Detail: "the agent's tpm could not activate the credential", Err: err})
		}
		return store.AKEnrollment{}, fmt.Errorf("activate credential of host %q: %w", hostID, err)
	}
	enr, err := e.complete(ctx, hostID, id, resp.Secret)
	if err != nil {
		return store.AKEnrollment{}, e.logRefusal(ctx, err)
	}
	e.logger.LogAttrs(ctx, slog.LevelInfo, "ak enrolled", slog.String(keyHost, hostID),
		slog.String(keyAKName, hex.EncodeToString(enr.AKName)))
	return enr, nil
}

// logRefusal logs a refusal and returns err.
func (e *Enroller) logRefusal(ctx context.Context, err error) error {
	var r *RefusedError
	if errors.As(err, &r) {
		e.logger.LogAttrs(ctx, slog.LevelWarn, "ak enrollment refused",
			slog.String(keyHost, r.HostID), slog.String(keyReason, r.Reason), slog.String(keyError, err.Error()))
	}
	return err
}

// challenge checks the EK and AK of info and stores an activation challenge
// for them. It returns the challenge id and the request for the agent.
func (e *Enroller) challenge(ctx context.Context, hostID string, info *evidence.AKInfo) (string, evidence.ActivateRequest, error) {
	ekDigest, err := e.checkEK(ctx, hostID, info.EKPublic, info.EKCertificate)
	if err != nil {
		return "", evidence.ActivateRequest{}, err
	}
	if err := e.ekFree(ctx, hostID, ekDigest); err != nil {
		return "", evidence.ActivateRequest{}, err
	}
	if _, err := checkAK(hostID, info.AKPublic, info.AKName); err != nil {
		return "", evidence.ActivateRequest{}, err
	}
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return "", evidence.ActivateRequest{}, fmt.Errorf("activation secret: %w", err)
	}
	blob, encSecret, err := credential.MakeCredential(info.EKPublic, info.AKName, secret)
	if err != nil {
		return "", evidence.ActivateRequest{}, fmt.Errorf("make credential for host %q: %w", hostID, err)
	}
	id, err := randomID()
	if err != nil {
		return "", evidence.ActivateRequest{}, err
	}
	digest := sha256.Sum256(secret)
	now := e.cfg.Now()
	err = e.store.CreateChallenge(ctx, store.ActivationChallenge{
		ID:            id,
		HostID:        hostID,
		AKPublic:      info.AKPublic,
		AKName:        info.AKName,
		EKPublic:      info.EKPublic,
		EKCertificate: info.EKCertificate,
		SecretSHA256:  digest[:],
		PCRBanks:      knownBanks(info.PCRBanks),
		ExpiresAt:     now.Add(e.cfg.ChallengeTTL),
		CreatedAt:     now,
	})
	if err != nil {
		return "", evidence.ActivateRequest{}, fmt.Errorf("store activation challenge for host %q: %w", hostID, err)
	}
	return id, evidence.ActivateRequest{Version: evidence.Version, CredentialBlob: blob, EncryptedSecret: encSecret}, nil
}

// complete consumes the challenge id with the secret the agent recovered and,
// when it matches, issues the AK certificate and stores the enrollment. The
// AK and EK come from the stored challenge, never from the answer.
func (e *Enroller) complete(ctx context.Context, hostID, id string, secret []byte) (store.AKEnrollment, error) {
	ch, err := e.store.ConsumeChallenge(ctx, id, e.cfg.Now())
	switch {
	case errors.Is(err, store.ErrChallengeUsed):
		return store.AKEnrollment{}, &RefusedError{HostID: hostID, Reason: ChallengeReplayed,
			Detail: "the activation challenge was answered before", Err: err}
	case errors.Is(err, store.ErrNotFound):
		// Challenges are deleted only once expired, so a missing one expired.
		return store.AKEnrollment{}, &RefusedError{HostID: hostID, Reason: ChallengeExpired,
			Detail: "the activation challenge expired before it was answered", Err: err}
	case err != nil:
		return store.AKEnrollment{}, fmt.Errorf("consume activation challenge: %w", err)
	case ch.HostID != hostID:
		return store.AKEnrollment{}, fmt.Errorf("activation challenge %s belongs to host %q, not %q", id, ch.HostID, hostID)
	}
	got := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], ch.SecretSHA256) != 1 {
		return store.AKEnrollment{}, &RefusedError{HostID: ch.HostID, Reason: ActivationFailed,
			Detail: "the recovered secret is not the sealed one"}
	}
	// The EK again: its registration may have been deleted while the
	// challenge was out (a deletion deletes the enrollments it vouched for,
	// so one stored after it would outlive it).
	ekDigest, err := e.checkEK(ctx, ch.HostID, ch.EKPublic, ch.EKCertificate)
	if err != nil {
		return store.AKEnrollment{}, err
	}
	akKey, err := checkAK(ch.HostID, ch.AKPublic, ch.AKName)
	if err != nil {
		return store.AKEnrollment{}, fmt.Errorf("stored challenge of host %q: %w", ch.HostID, err)
	}
	// Again at the end: another host may have enrolled with the EK meanwhile.
	if err := e.ekFree(ctx, ch.HostID, ekDigest); err != nil {
		return store.AKEnrollment{}, err
	}
	cert, err := e.ca.issueAK(akKey, ch.HostID, e.cfg.Now(), e.cfg.AKCertValidity)
	if err != nil {
		return store.AKEnrollment{}, fmt.Errorf("issue ak certificate for host %q: %w", ch.HostID, err)
	}
	enr := store.AKEnrollment{
		HostID:         ch.HostID,
		AKName:         ch.AKName,
		AKPublic:       ch.AKPublic,
		AKCertificate:  cert.Raw,
		EKCertificate:  ch.EKCertificate,
		EKPublicSHA256: ekDigest,
		PCRBanks:       ch.PCRBanks,
		CreatedAt:      e.cfg.Now(),
	}
	put := e.store.PutAKEnrollment
	if len(enr.EKCertificate) == 0 {
		// Stored only while the registration is: a deletion at the same
		// time comes first or deletes this enrollment too.
		put = e.store.PutRegisteredAKEnrollment
	}
	if err := put(ctx, enr); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.AKEnrollment{}, &RefusedError{HostID: ch.HostID, Reason: EKNotRegistered,
				Detail: "the ek registration was deleted during the enrollment", Err: err}
		}
		if errors.Is(err, store.ErrEKInUse) {
			// Another host enrolled with the EK after ekFree read (two
			// replicas at the same instant): the store's constraint decides.
			return store.AKEnrollment{}, &RefusedError{HostID: ch.HostID, Reason: EKInUse, Detail: fmt.Sprintf(
				"the tpm's ek (sha-256 %s) was enrolled for another host during this enrollment: one tpm attests one host", ekDigest), Err: err}
		}
		if errors.Is(err, store.ErrConflict) {
			return store.AKEnrollment{}, fmt.Errorf("host %q: %w (%w)", ch.HostID, ErrAKInUse, err)
		}
		return store.AKEnrollment{}, fmt.Errorf("store ak enrollment of host %q: %w", ch.HostID, err)
	}
	stored, err := e.store.AKEnrollmentByHost(ctx, ch.HostID)
	if err != nil {
		return store.AKEnrollment{}, fmt.Errorf("read back ak enrollment of host %q: %w", ch.HostID, err)
	}
	return stored, nil
}

// knownBanks returns the PCR bank names of banks that evidence knows, once
// each, in their order; nil if none. Appraisal asks a quote only for known
// banks, so an unknown name would never be read.
func knownBanks(banks []string) []string {
	var known []string
	for _, b := range banks {
		switch b {
		case evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384:
			if !slices.Contains(known, b) {
				known = append(known, b)
			}
		}
	}
	return known
}

// burn consumes a challenge that can no longer be answered, so that it
// cannot be answered later either.
func (e *Enroller) burn(ctx context.Context, id string) {
	if _, err := e.store.ConsumeChallenge(context.WithoutCancel(ctx), id, e.cfg.Now()); err != nil &&
		!errors.Is(err, store.ErrChallengeUsed) && !errors.Is(err, store.ErrNotFound) {
		e.logger.LogAttrs(ctx, slog.LevelWarn, "activation challenge not consumed", slog.String(keyError, err.Error()))
	}
}

// checkEK checks the EK (see the package documentation) and returns the
// lower-hex SHA-256 of its DER SubjectPublicKeyInfo.
func (e *Enroller) checkEK(ctx context.Context, hostID string, ekPublic, ekCert []byte) (string, error) {
	refuse := func(reason, detail string, err error) (string, error) {
		return "", &RefusedError{HostID: hostID, Reason: reason, Detail: detail, Err: err}
	}
	pub, err := decodePublic(ekPublic)
	if err != nil {
		return refuse(EKAttributes, "the ek public area does not decode", err)
	}
	if a := pub.ObjectAttributes; !a.Restricted || !a.Decrypt || a.SignEncrypt || !a.FixedTPM || !a.FixedParent {
		return refuse(EKAttributes, "the ek is not a restricted decryption key bound to its tpm", nil)
	}
	key, err := publicKey(pub)
	if err != nil {
		return refuse(EKAttributes, "the ek public key is unusable", err)
	}
	digest, err := spkiDigest(key)
	if err != nil {
		return refuse(EKAttributes, "the ek public key is unusable", err)
	}
	if len(ekCert) > 0 {
		cert, err := VerifyEKCertificate(ekCert, e.cfg.EKRoots, e.cfg.EKIntermediates, e.cfg.Now())
		if err != nil {
			return refuse(EKCertUntrusted, "the ek certificate does not chain to a trusted ek ca", err)
		}
		if !keysEqual(cert.PublicKey, key) {
			return refuse(EKMismatch, "the ek certificate certifies another key than the tpm's ek", nil)
		}
		return digest, nil
	}
	if !e.cfg.AllowRegisteredEKs {
		return refuse(EKCertUntrusted, "the tpm has no ek certificate and registered eks are not allowed", nil)
	}
	_, err = e.store.EKRegistrationByDigest(ctx, digest)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse(EKNotRegistered, "the tpm has no ek certificate and its ek public key (sha-256 "+digest+") is not registered", nil)
	case err != nil:
		return "", fmt.Errorf("look up ek registration: %w", err)
	}
	return digest, nil
}

// ekFree refuses an EK that another registered host is enrolled with
// (EKInUse). Enrollments of deleted hosts do not count, so a machine
// registered again under a new host id enrolls.
func (e *Enroller) ekFree(ctx context.Context, hostID, ekDigest string) error {
	holders, err := e.store.HostsEnrolledWithEK(ctx, hostID, ekDigest)
	if err != nil {
		return fmt.Errorf("look up the hosts enrolled with the ek of host %q: %w", hostID, err)
	}
	if len(holders) > 0 {
		return &RefusedError{HostID: hostID, Reason: EKInUse, Detail: fmt.Sprintf(
			"the tpm's ek (sha-256 %s) is enrolled for host %q: one tpm attests one host (delete that host first)", ekDigest, holders[0])}
	}
	return nil
}

// checkAK checks the AK public area and name and returns its public key.
func checkAK(hostID string, akPublic, akName []byte) (crypto.PublicKey, error) {
	refuse := func(reason, detail string, err error) (crypto.PublicKey, error) {
		return nil, &RefusedError{HostID: hostID, Reason: reason, Detail: detail, Err: err}
	}
	pub, err := decodePublic(akPublic)
	if err != nil {
		return refuse(AKAttributes, "the ak public area does not decode", err)
	}
	a := pub.ObjectAttributes
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"restricted", a.Restricted}, {"sign", a.SignEncrypt}, {"fixedTPM", a.FixedTPM},
		{"fixedParent", a.FixedParent}, {"sensitiveDataOrigin", a.SensitiveDataOrigin}, {"not decrypt", !a.Decrypt},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return refuse(AKAttributes, fmt.Sprintf("the ak lacks the attributes %v", missing), nil)
	}
	key, err := publicKey(pub)
	if err != nil {
		return refuse(AKAttributes, "the ak public key is unusable", err)
	}
	name, err := credential.Name(akPublic)
	if err != nil {
		return refuse(AKAttributes, "the ak name cannot be computed", err)
	}
	if !bytes.Equal(name, akName) {
		return refuse(AKNameMismatch, fmt.Sprintf("the ak name %x is not the name %x of its public area", akName, name), nil)
	}
	return key, nil
}

// decodePublic decodes a TPMT_PUBLIC that must be exactly the bytes given
// (no trailing data, canonical encoding).
func decodePublic(b []byte) (*tpm2.TPMTPublic, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, fmt.Errorf("decode tpmt_public: %w", err)
	}
	if !bytes.Equal(tpm2.Marshal(pub), b) {
		return nil, errors.New("decode tpmt_public: trailing or non-canonical data")
	}
	return pub, nil
}

// publicKey returns the RSA or ECDSA key of a public area, checked.
func publicKey(pub *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if _, err := k.ECDH(); err != nil {
			return nil, fmt.Errorf("ecc public key: %w", err)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("rsa public key of %d bits is too small", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("unsupported public key type %T", key)
	}
	return key, nil
}

// ekPublicDigest returns the SPKI digest of a TPMT_PUBLIC.
func ekPublicDigest(ekPublic []byte) (string, error) {
	pub, err := decodePublic(ekPublic)
	if err != nil {
		return "", err
	}
	key, err := publicKey(pub)
	if err != nil {
		return "", err
	}
	return spkiDigest(key)
}

// spkiDigest is the lower-hex SHA-256 of the key's DER SubjectPublicKeyInfo,
// the digest EK registrations are looked up by.
func spkiDigest(key crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func keysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// randomID returns a random UUID (version 4) string.
func randomID() (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return id.String(), nil
}
