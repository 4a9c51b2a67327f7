package keybroker

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	pb "github.com/google/go-tpm-tools/proto/tpm"
	"github.com/google/go-tpm-tools/server"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// HostStore is what a release reads of the host (package store).
type HostStore interface {
	HostByID(ctx context.Context, id string) (store.Host, error)
	FlavorGroupByID(ctx context.Context, id string) (store.FlavorGroup, error)
	HostDisabled(ctx context.Context, id string) (time.Time, error)
	AKEnrollmentByHost(ctx context.Context, hostID string) (store.AKEnrollment, error)
	EKRegistrationByDigest(ctx context.Context, digest string) (store.EKRegistration, error)
	ListReports(ctx context.Context, f store.ReportFilter) ([]store.Report, error)
	ReportByID(ctx context.Context, id string) (store.Report, error)
}

// Attester attests a host now, with a fresh nonce, and stores its signed
// report (HVS's report path, in process).
type Attester interface {
	CreateReport(ctx context.Context, hostID string) (*report.Report, error)
}

// ReportVerifier checks a report's signature against the verifier's own
// signing identity (report.Verifier).
type ReportVerifier interface {
	Verify(jws string, now time.Time) (*report.Report, error)
}

// Release decides whether the host may have the secret named name now and,
// if so, returns it sealed to the host's TPM. The host id is the one the
// bus authenticated (the request's subject). A refusal is a
// *RefusalError; other errors are infrastructure failures, and refuse too.
// Every decision is audited and counted.
func (b *Broker) Release(ctx context.Context, hostID, name string) (*bus.SealedSecret, error) {
	d := decision{host: hostID, name: name}
	sealed, err := b.release(ctx, &d)
	b.audit(ctx, d, err)
	return sealed, err
}

// decision is what the audit log records of one release.
type decision struct {
	host, name, secretID, reportID string
	version                        int64
	pcrs                           []int
}

func (b *Broker) audit(ctx context.Context, d decision, err error) {
	b.journal.add(d.record(b.cfg.Now(), err))
	attrs := []slog.Attr{slog.String(keyHost, d.host), slog.String(keyName, d.name)}
	if d.secretID != "" {
		attrs = append(attrs, slog.String(keySecret, d.secretID), slog.Int64(keyVersion, d.version))
	}
	if d.reportID != "" {
		attrs = append(attrs, slog.String(keyReport, d.reportID))
	}
	if err == nil {
		attrs = append(attrs, slog.String(keyOutcome, OutcomeReleased), slog.Any(keyPCRs, d.pcrs))
		b.logger.LogAttrs(ctx, slog.LevelInfo, "secret released", attrs...)
		b.observe(OutcomeReleased, "")
		return
	}
	reason := ReasonOf(err)
	attrs = append(attrs, slog.String(keyOutcome, OutcomeRefused), slog.String(keyReason, reason))
	var re *RefusalError
	if errors.As(err, &re) {
		attrs = append(attrs, slog.String(keyDetail, re.Detail))
	} else {
		attrs = append(attrs, slog.String(keyError, err.Error()))
	}
	b.logger.LogAttrs(ctx, slog.LevelWarn, "secret refused", attrs...)
	b.observe(OutcomeRefused, reason)
}

func (b *Broker) observe(outcome, reason string) {
	if b.cfg.Observe != nil {
		b.cfg.Observe(outcome, reason)
	}
}

// ReasonInternal is the reason of a release that failed for an
// infrastructure error (store, bus, TPM blob), not a policy.
const ReasonInternal = "internal_error"

// ReasonOf returns the reason of a refusal, ReasonInternal for any other
// error.
func ReasonOf(err error) string {
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonInternal
}

func (b *Broker) release(ctx context.Context, d *decision) (*bus.SealedSecret, error) {
	if b.hosts == nil || b.reports == nil {
		return nil, errors.New("the key broker has no host store or report verifier")
	}
	sec, value, err := b.secretByName(ctx, d.name)
	if err != nil {
		return nil, err
	}
	d.secretID, d.version = sec.ID, sec.Version
	pol, err := decodePolicy(sec.Policy)
	if err != nil {
		return nil, err
	}
	h, err := b.host(ctx, d.host)
	if err != nil {
		return nil, err
	}
	// Refuse what the policy refuses before attesting anything.
	if err := admit(pol, h); err != nil {
		return nil, err
	}
	// The enrollment first: the report must be of the TPM the secret is
	// sealed to, so one made before the host's current enrollment is not
	// used.
	ek, enrolled, err := b.enrolledEK(ctx, d.host)
	if err != nil {
		return nil, err
	}
	r, err := b.signedReport(ctx, d.host, MaxEvidenceAge(pol), enrolled)
	if err != nil {
		return nil, err
	}
	d.reportID = r.ID
	pcrs, err := Decide(pol, h, r, b.cfg.Now())
	if err != nil {
		return nil, err
	}
	sealed, err := seal(ek, d.host, sec, value, pcrs)
	if err != nil {
		return nil, err
	}
	sealed.ExpiresAt = r.Created.Add(MaxEvidenceAge(pol))
	if r.Expiration.Before(sealed.ExpiresAt) {
		sealed.ExpiresAt = r.Expiration
	}
	d.pcrs = sealed.PCRs
	return sealed, nil
}

// secretByName finds a secret and its value by name.
func (b *Broker) secretByName(ctx context.Context, name string) (store.BrokerSecret, []byte, error) {
	recs, err := b.secrets.ListBrokerSecrets(ctx)
	if err != nil {
		return store.BrokerSecret{}, nil, err
	}
	i := slices.IndexFunc(recs, func(s store.BrokerSecret) bool { return s.Name == name })
	if i < 0 {
		return store.BrokerSecret{}, nil, refuse(ReasonSecretUnknown, "no secret %q", name)
	}
	s, v, err := b.secrets.BrokerSecretValue(ctx, recs[i].ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.BrokerSecret{}, nil, refuse(ReasonSecretUnknown, "no secret %q", name)
	}
	return s, v, err
}

// host reads what the policy needs of the host.
func (b *Broker) host(ctx context.Context, id string) (Host, error) {
	rec, err := b.hosts.HostByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Host{}, refuse(ReasonHostUnknown, "no host %s", id)
	} else if err != nil {
		return Host{}, err
	}
	h := Host{ID: rec.ID}
	for _, gid := range rec.FlavorGroupIDs {
		g, err := b.hosts.FlavorGroupByID(ctx, gid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return Host{}, err
		}
		h.FlavorGroupNames = append(h.FlavorGroupNames, g.Name)
	}
	at, err := b.hosts.HostDisabled(ctx, id)
	if err != nil {
		return Host{}, err
	}
	h.Disabled = !at.IsZero()
	return h, nil
}

// signedReport returns the host's latest report, checked against the
// verifier's signing identity, when it is no older than maxAge/2 and was
// made after the host's enrollment at enrolled; else it attests the host
// afresh (a new quote with a fresh nonce) and returns that report, checked
// alike. Only the signed form is believed.
func (b *Broker) signedReport(ctx context.Context, hostID string, maxAge time.Duration, enrolled time.Time) (*report.Report, error) {
	now := b.cfg.Now()
	latest, err := b.hosts.ListReports(ctx, store.ReportFilter{HostID: hostID, Limit: 1})
	if err != nil {
		return nil, err
	}
	// Reuse a report only in the first half of its allowed age, so that a
	// renewal always extends the lease by at least half of it.
	if len(latest) == 1 && now.Sub(latest[0].CreatedAt) <= maxAge/2 {
		r, err := b.verified(latest[0], hostID, now)
		if err != nil || !r.Created.Before(enrolled) {
			return r, err
		}
	}
	if b.attest == nil {
		return nil, refuse(ReasonEvidenceStale, "no report of host %s within %s", hostID, maxAge)
	}
	fresh, err := b.attest.CreateReport(ctx, hostID)
	if err != nil {
		return nil, refuse(ReasonAttestationFailed, "attest host %s: %v", hostID, err)
	}
	rec, err := b.hosts.ReportByID(ctx, fresh.ID)
	if err != nil {
		return nil, err
	}
	r, err := b.verified(rec, hostID, b.cfg.Now())
	if err == nil && r.Created.Before(enrolled) {
		return nil, refuse(ReasonEvidenceStale, "report %s of host %s was made before its enrollment at %s", r.ID, hostID, enrolled.UTC().Format(time.RFC3339))
	}
	return r, err
}

func (b *Broker) verified(rec store.Report, hostID string, now time.Time) (*report.Report, error) {
	r, err := b.reports.Verify(rec.JWS, now)
	if err != nil {
		return nil, refuse(ReasonReportSignature, "report %s: %v", rec.ID, err)
	}
	if r.HostID != hostID {
		return nil, refuse(ReasonReportOfAnotherHost, "report %s is of host %s", r.ID, r.HostID)
	}
	return r, nil
}

// enrolledEK returns the public key of the EK the host enrolled with, and
// when it enrolled: from its EK certificate, or from its registered EK. It
// is checked against the digest the enrollment recorded.
func (b *Broker) enrolledEK(ctx context.Context, hostID string) (crypto.PublicKey, time.Time, error) {
	e, err := b.hosts.AKEnrollmentByHost(ctx, hostID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, refuse(ReasonNotEnrolled, "host %s has no AK enrollment", hostID)
	} else if err != nil {
		return nil, time.Time{}, err
	}
	var spki []byte
	if len(e.EKCertificate) > 0 {
		cert, err := x509.ParseCertificate(e.EKCertificate)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("ek certificate of host %s: %w", hostID, err)
		}
		spki = cert.RawSubjectPublicKeyInfo
	} else {
		reg, err := b.hosts.EKRegistrationByDigest(ctx, e.EKPublicSHA256)
		if errors.Is(err, store.ErrNotFound) {
			return nil, time.Time{}, refuse(ReasonNotEnrolled, "host %s: its registered ek is gone", hostID)
		} else if err != nil {
			return nil, time.Time{}, err
		}
		spki = reg.EKPublic
	}
	sum := sha256.Sum256(spki)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), e.EKPublicSHA256) {
		return nil, time.Time{}, fmt.Errorf("host %s: the ek public key does not match the enrolled digest", hostID)
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ek of host %s: %w", hostID, err)
	}
	return pub, e.CreatedAt, nil
}

// seal encrypts the value under a fresh key and seals the key to the EK
// (and the PCR values) with go-tpm-tools' CreateImportBlob, converted to
// the bus's JSON form so that the agent links no protobuf.
func seal(ek crypto.PublicKey, hostID string, sec store.BrokerSecret, value []byte, pcrs map[int][]byte) (*bus.SealedSecret, error) {
	key := make([]byte, bus.SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	var pbPCRs *pb.PCRs
	var indexes []int
	if len(pcrs) > 0 {
		pbPCRs = &pb.PCRs{Hash: pb.HashAlgo_SHA256, Pcrs: map[uint32][]byte{}}
		for i, v := range pcrs {
			pbPCRs.Pcrs[uint32(i)] = v
			indexes = append(indexes, i)
		}
		slices.Sort(indexes)
	}
	blob, err := server.CreateImportBlob(ek, key, pbPCRs)
	if err != nil {
		return nil, refuse(ReasonUnsupportedEK, "seal to the ek of host %s: %v", hostID, err)
	}
	out := &bus.SealedSecret{
		Name: sec.Name, SecretID: sec.ID, Version: sec.Version,
		Duplicate: blob.GetDuplicate(), EncryptedSeed: blob.GetEncryptedSeed(), PublicArea: blob.GetPublicArea(),
	}
	if err := bus.EncryptValue(out, key, hostID, value); err != nil {
		return nil, err
	}
	if len(indexes) > 0 {
		d := sha256.New()
		for _, i := range indexes {
			d.Write(pcrs[i])
		}
		out.PCRs, out.PCRDigest = indexes, d.Sum(nil)
	}
	return out, nil
}
