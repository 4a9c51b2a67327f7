package fleet

import (
	"context"

	"trustedcompute.io/tc/internal/bus"
)

// HoldManager pauses the attestation manager: every reconcile running ends
// first, none starts until release.
func (f *Fleet) HoldManager() (release func()) {
	f.hold.Lock()
	return f.hold.Unlock
}

// Publish plays the bus delivering a report notice of hostID to the
// manager, as the verifier's publications arrive.
func (f *Fleet) Publish(hostID string) error {
	subject, err := bus.ReportSubject(hostID)
	if err != nil {
		return err
	}
	f.notices.published(subject)
	return nil
}

// LatestReportTrusted reads the verifier's latest report of hostID.
func (f *Fleet) LatestReportTrusted(ctx context.Context, hostID string) (id string, trusted bool, err error) {
	r, err := f.latestReport(ctx, hostID)
	if err != nil || r == nil {
		return "", false, err
	}
	return r.ID, r.Trusted(), nil
}

// AdminToken logs in to the verifier's AAS as the sandbox's administrator.
func (f *Fleet) AdminToken(ctx context.Context) (string, error) {
	password, err := adminPassword(f.dir)
	if err != nil {
		return "", err
	}
	return f.verifier.AAS().Login(ctx, adminUser, password)
}

// AdminPassword is the sandbox administrator's password.
func (f *Fleet) AdminPassword() (string, error) { return adminPassword(f.dir) }
