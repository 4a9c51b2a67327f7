package store

import (
	"context"
	"fmt"
	"strings"
)

// HostsHoldingHardwareUUID returns the IDs of the hosts other than hostID
// that hold the hardware UUID uuid, as written, in lower case or in upper
// case (the agents write it in one case; the hosts_hardware_uuid index
// serves all three).
func (q *queries) HostsHoldingHardwareUUID(ctx context.Context, hostID, uuid string) ([]string, error) {
	ids, err := q.strings(ctx, `SELECT id FROM hosts WHERE hardware_uuid IN ($1, $2, $3) AND id <> $4 ORDER BY id`,
		uuid, strings.ToLower(uuid), strings.ToUpper(uuid), hostID)
	if err != nil {
		return nil, fmt.Errorf("hosts holding hardware uuid %q: %w", uuid, err)
	}
	return ids, nil
}

// RegisteredHardwareUUID returns the hardware UUID an operator registered
// with the EK of the host's enrolled AK; "" when the host is not enrolled
// or its EK is not registered (enrolled by its EK certificate).
func (q *queries) RegisteredHardwareUUID(ctx context.Context, hostID string) (string, error) {
	uuids, err := q.strings(ctx, `SELECT r.hardware_uuid FROM ak_enrollments e
		JOIN ek_registrations r ON r.ek_public_sha256 = e.ek_public_sha256 WHERE e.host_id = $1`, hostID)
	if err != nil {
		return "", fmt.Errorf("registered hardware uuid of host %q: %w", hostID, err)
	}
	if len(uuids) == 0 {
		return "", nil
	}
	return uuids[0], nil
}
