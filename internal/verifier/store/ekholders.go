package store

import (
	"context"
	"fmt"
	"strings"
)

// ekUniqueIndex is the unique index on the enrollments' EK digest
// (migration 0019): one TPM attests one host.
const ekUniqueIndex = "ak_enrollments_one_per_ek"

// hostsEnrolledWithEKQuery searches the enrollments by the index on their
// EK digest (migration 0019; 0018 before it), not by a scan of every enrollment.
const hostsEnrolledWithEKQuery = `SELECT e.host_id FROM ak_enrollments e JOIN hosts h ON h.id = e.host_id
	WHERE e.ek_public_sha256 = $1 AND e.host_id <> $2 ORDER BY e.host_id`

// HostsEnrolledWithEK returns the IDs of the registered hosts other than
// hostID whose enrolled AK was activated with the EK whose SubjectPublicKeyInfo
// has the SHA-256 ekDigest (lower or upper hex). Enrollments left by deleted
// hosts are not counted. One TPM attests one host: enrollment refuses an EK
// another host holds (package enroll).
func (q *queries) HostsEnrolledWithEK(ctx context.Context, hostID, ekDigest string) ([]string, error) {
	ids, err := q.strings(ctx, hostsEnrolledWithEKQuery, strings.ToLower(ekDigest), hostID)
	if err != nil {
		return nil, fmt.Errorf("hosts enrolled with ek %s: %w", ekDigest, err)
	}
	return ids, nil
}
