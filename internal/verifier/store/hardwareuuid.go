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
