package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EKRegistration is an endorsement key an operator registered in advance, for
// TPMs whose EK certificate does not chain to a trusted EK CA.
type EKRegistration struct {
	ID, HardwareUUID, Description string
	EKPublicSHA256                string // lower hex of SHA-256 over the DER SubjectPublicKeyInfo
	EKPublic                      []byte // DER SubjectPublicKeyInfo
	CreatedAt                     time.Time
}

// CreateEKRegistration stores a registration; ErrConflict if its ID or
// digest is taken.
func (q *queries) CreateEKRegistration(ctx context.Context, r EKRegistration) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO ek_registrations
		(id, hardware_uuid, description, ek_public_sha256, ek_public, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.HardwareUUID, r.Description, strings.ToLower(r.EKPublicSHA256), dbBytes(r.EKPublic),
		createdAt(r.CreatedAt))
	return created(err, fmt.Sprintf("ek registration %s", r.EKPublicSHA256))
}

const ekRegistrationColumns = `id, hardware_uuid, description, ek_public_sha256, ek_public, created_at`

func scanEKRegistration(row interface{ Scan(...any) error }) (EKRegistration, error) {
	var (
		r      EKRegistration
		create sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.HardwareUUID, &r.Description, &r.EKPublicSHA256, &r.EKPublic, &create); err != nil {
		return EKRegistration{}, err
	}
	r.CreatedAt = fromDBTime(create)
	return r, nil
}

// EKRegistrationByDigest returns the registration of the EK whose
// SubjectPublicKeyInfo has the SHA-256 digest (hex); ErrNotFound if none.
func (q *queries) EKRegistrationByDigest(ctx context.Context, digest string) (EKRegistration, error) {
	return queryOne(ctx, q.r, "ek registration "+digest, scanEKRegistration,
		`SELECT `+ekRegistrationColumns+` FROM ek_registrations WHERE ek_public_sha256 = $1`,
		strings.ToLower(digest))
}

// ListEKRegistrations returns all registrations, oldest first.
func (q *queries) ListEKRegistrations(ctx context.Context) ([]EKRegistration, error) {
	return queryAll(ctx, q.r, "list ek registrations", scanEKRegistration,
		`SELECT `+ekRegistrationColumns+` FROM ek_registrations ORDER BY created_at, id`)
}

// DeleteEKRegistration deletes the registration and, in the same
// transaction, the AK enrollments it vouched for: those with its EK digest
// and no EK certificate (a certificate that chained to a trusted EK CA
// vouches for the others). Their hosts' quotes are then refused (AK not
// enrolled) until they enroll again, which needs a registration.
// ErrNotFound if there is none.
func (q *queries) DeleteEKRegistration(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		var digest string
		err := q.w.QueryRowContext(ctx, `DELETE FROM ek_registrations WHERE id = $1 RETURNING ek_public_sha256`, id).Scan(&digest)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delete ek registration id %q: %w", id, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("delete ek registration id %q: %w", id, err)
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM ak_enrollments
			WHERE ek_public_sha256 = $1 AND length(ek_certificate) = 0`, digest); err != nil {
			return fmt.Errorf("delete the ak enrollments of ek registration id %q: %w", id, err)
		}
		return nil
	})
}

// ActivationChallenge is a credential activation in progress: the verifier
// sent MakeCredential's output for the AK and keeps the digest of the secret
// it expects back.
type ActivationChallenge struct {
	ID, HostID                                string
	AKPublic, AKName, EKPublic, EKCertificate []byte
	SecretSHA256                              []byte
	// PCRBanks are the PCR banks the agent said its TPM had allocated; nil
	// if it said none.
	PCRBanks             []string
	ExpiresAt, CreatedAt time.Time
}

// CreateChallenge stores a challenge; ErrConflict if its ID is taken.
func (q *queries) CreateChallenge(ctx context.Context, c ActivationChallenge) error {
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("create activation challenge %q: no expiry", c.ID)
	}
	_, err := q.w.ExecContext(ctx, `INSERT INTO activation_challenges
		(id, host_id, ak_public, ak_name, ek_public, ek_certificate, secret_sha256, expires_at, created_at, pcr_banks)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.ID, c.HostID, dbBytes(c.AKPublic), dbBytes(c.AKName), dbBytes(c.EKPublic),
		dbBytes(c.EKCertificate), dbBytes(c.SecretSHA256), c.ExpiresAt.UnixMicro(), createdAt(c.CreatedAt),
		joinBanks(c.PCRBanks))
	return created(err, fmt.Sprintf("activation challenge %q", c.ID))
}

const challengeColumns = `id, host_id, ak_public, ak_name, ek_public, ek_certificate, secret_sha256, expires_at, created_at, pcr_banks`

// joinBanks and splitBanks store a list of PCR bank names in a text column;
// nil is the empty string.
func joinBanks(banks []string) string { return strings.Join(banks, ",") }

func splitBanks(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ConsumeChallenge marks the challenge used and returns it, atomically: of
// concurrent callers exactly one succeeds. Errors: ErrNotFound if there is no
// such challenge, ErrChallengeUsed if it was consumed before, and an error
// wrapping ErrNotFound and saying "expired" if it expired at or before now.
func (q *queries) ConsumeChallenge(ctx context.Context, id string, now time.Time) (ActivationChallenge, error) {
	var (
		c               ActivationChallenge
		expires, create sql.NullInt64
		banks           string
	)
	err := q.w.QueryRowContext(ctx, `UPDATE activation_challenges SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING `+challengeColumns, id, now.UnixMicro()).Scan(
		&c.ID, &c.HostID, &c.AKPublic, &c.AKName, &c.EKPublic, &c.EKCertificate, &c.SecretSHA256,
		&expires, &create, &banks)
	if err == nil {
		c.PCRBanks = splitBanks(banks)
		c.ExpiresAt = fromDBTime(expires)
		c.CreatedAt = fromDBTime(create)
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return ActivationChallenge{}, fmt.Errorf("consume activation challenge %q: %w", id, err)
	}
	// Nothing updated: tell why.
	var used sql.NullInt64
	err = q.r.QueryRowContext(ctx, `SELECT expires_at, used_at FROM activation_challenges WHERE id = $1`, id).
		Scan(&expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ActivationChallenge{}, fmt.Errorf("activation challenge %q: %w", id, ErrNotFound)
	case err != nil:
		return ActivationChallenge{}, fmt.Errorf("consume activation challenge %q: %w", id, err)
	case used.Valid:
		return ActivationChallenge{}, fmt.Errorf("activation challenge %q: %w", id, ErrChallengeUsed)
	default:
		return ActivationChallenge{}, fmt.Errorf("activation challenge %q expired at %s: %w",
			id, fromDBTime(expires).Format(time.RFC3339), ErrNotFound)
	}
}

// DeleteExpiredChallenges deletes the challenges that expired at or before
// now, used or not, and returns how many it deleted.
func (q *queries) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int64, error) {
	res, err := q.w.ExecContext(ctx, `DELETE FROM activation_challenges WHERE expires_at <= $1`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("delete expired activation challenges: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired activation challenges: %w", err)
	}
	return n, nil
}

// AKEnrollment is a host's enrolled attestation key: it passed credential
// activation and was issued AKCertificate.
type AKEnrollment struct {
	HostID                                         string
	AKName, AKPublic, AKCertificate, EKCertificate []byte
	EKPublicSHA256                                 string
	// PCRBanks are the PCR banks the TPM had allocated at enrollment; nil
	// if the agent did not say.
	PCRBanks  []string
	CreatedAt time.Time
}

// PutAKEnrollment stores the host's enrollment, replacing any it had
// (re-enrollment). ErrConflict if another host has the same AK name,
// ErrEKInUse if another host is enrolled with the same EK (a unique index,
// migration 0019: two enrollments at the same instant cannot both pass).
func (q *queries) PutAKEnrollment(ctx context.Context, e AKEnrollment) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO ak_enrollments
		(host_id, ak_name, ak_public, ak_certificate, ek_certificate, ek_public_sha256, created_at, pcr_banks)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (host_id) DO UPDATE SET
			ak_name = excluded.ak_name, ak_public = excluded.ak_public,
			ak_certificate = excluded.ak_certificate, ek_certificate = excluded.ek_certificate,
			ek_public_sha256 = excluded.ek_public_sha256, created_at = excluded.created_at,
			pcr_banks = excluded.pcr_banks`,
		e.HostID, dbBytes(e.AKName), dbBytes(e.AKPublic), dbBytes(e.AKCertificate), dbBytes(e.EKCertificate),
		strings.ToLower(e.EKPublicSHA256), createdAt(e.CreatedAt), joinBanks(e.PCRBanks))
	if err = classify(err); errors.Is(err, errUnique) && violates(err, ekUniqueIndex, "ak_enrollments.ek_public_sha256") {
		return fmt.Errorf("ak enrollment of host %q: ek %s: %w", e.HostID, e.EKPublicSHA256, ErrEKInUse)
	} else if errors.Is(err, errUnique) {
		return fmt.Errorf("ak enrollment of host %q: ak name %x: %w", e.HostID, e.AKName, ErrConflict)
	} else if err != nil {
		return fmt.Errorf("put ak enrollment of host %q: %w", e.HostID, err)
	}
	return nil
}

// PutRegisteredAKEnrollment is PutAKEnrollment of an enrollment that its EK
// registration vouches for (it has no EK certificate). In one transaction
// it locks the registration's row and stores the enrollment, so that a
// DeleteEKRegistration at the same time either comes first (ErrNotFound
// here, nothing stored) or waits and deletes the enrollment with the
// registration. ErrNotFound if the EK has no registration.
func (q *queries) PutRegisteredAKEnrollment(ctx context.Context, e AKEnrollment) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `UPDATE ek_registrations SET ek_public_sha256 = ek_public_sha256
			WHERE ek_public_sha256 = $1`, strings.ToLower(e.EKPublicSHA256))
		if err := oneRow(res, err, fmt.Sprintf("ak enrollment of host %q: ek registration %s", e.HostID, e.EKPublicSHA256)); err != nil {
			return err
		}
		return q.PutAKEnrollment(ctx, e)
	})
}

const akEnrollmentColumns = `host_id, ak_name, ak_public, ak_certificate, ek_certificate, ek_public_sha256, created_at, pcr_banks`

// akEnrollment reads the enrollment where selects; what (of host "h1")
// names it in the error.
func (q *queries) akEnrollment(ctx context.Context, what, where string, arg any) (AKEnrollment, error) {
	return queryOne(ctx, q.r, "ak enrollment "+what, scanAKEnrollment,
		`SELECT `+akEnrollmentColumns+` FROM ak_enrollments WHERE `+where, arg)
}

func scanAKEnrollment(row interface{ Scan(...any) error }) (AKEnrollment, error) {
	var (
		e      AKEnrollment
		create sql.NullInt64
		banks  string
	)
	if err := row.Scan(&e.HostID, &e.AKName, &e.AKPublic, &e.AKCertificate, &e.EKCertificate, &e.EKPublicSHA256, &create, &banks); err != nil {
		return AKEnrollment{}, err
	}
	e.PCRBanks = splitBanks(banks)
	e.CreatedAt = fromDBTime(create)
	return e, nil
}

// AKEnrollmentByHost returns the host's enrollment; ErrNotFound if none.
func (q *queries) AKEnrollmentByHost(ctx context.Context, hostID string) (AKEnrollment, error) {
	return q.akEnrollment(ctx, fmt.Sprintf("of host %q", hostID), `host_id = $1`, hostID)
}

// AKEnrollmentByName returns the enrollment of the AK with the TPM name;
// ErrNotFound if none.
func (q *queries) AKEnrollmentByName(ctx context.Context, akName []byte) (AKEnrollment, error) {
	return q.akEnrollment(ctx, fmt.Sprintf("of ak name %x", akName), `ak_name = $1`, dbBytes(akName))
}
