package hvs

import (
	"context"

	"trustedcompute.io/tc/internal/verifier/store"
)

// enrolledAKVerifier is an Enroller that also verifies an enrollment row
// its caller read (*enroll.Enroller is one): a report reads the host's row
// with the host (store.ReportHost.Enrollment), so the enroller need not
// read it again.
type enrolledAKVerifier interface {
	VerifyEnrolledAK(hostID string, enr store.AKEnrollment) (akPublic []byte, pcrBanks []string, err error)
}

// verifyAK is the enroller's VerifyAK of the host, of enr when it was read
// with the host (nil: not read, or the host has no enrollment, which
// VerifyAK reads and says).
func (s *Service) verifyAK(ctx context.Context, hostID string, enr *store.AKEnrollment) (akPublic []byte, pcrBanks []string, err error) {
	if v, ok := s.enroller.(enrolledAKVerifier); ok && enr != nil {
		return v.VerifyEnrolledAK(hostID, *enr)
	}
	return s.enroller.VerifyAK(ctx, hostID)
}
