package restapi

import (
	"encoding/json"
	"time"

	"trustedcompute.io/tc/internal/flavor"
)

// Host is a host as HVS shows it.
type Host struct {
	ID               string     `json:"id"`
	HostName         string     `json:"host_name"`
	ConnectionString string     `json:"connection_string"`
	Description      string     `json:"description"`
	HardwareUUID     string     `json:"hardware_uuid,omitempty"`
	FlavorGroupNames []string   `json:"flavorgroup_names"`
	Status           string     `json:"status"`
	LastConnected    *time.Time `json:"last_connected,omitempty"`
	ResetCount       *uint32    `json:"reset_count,omitempty"`
	RebootedAt       *time.Time `json:"rebooted_at,omitempty"`
	Created          time.Time  `json:"created"`
	// Disabled hosts get no bus credentials and no reports until enabled
	// (POST /hvs/v2/hosts/{id}/enable); DisabledAt says since when.
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// EnrollmentError says why the AK could not be enrolled on create.
	EnrollmentError string `json:"enrollment_error,omitempty"`
	// LastAttempt is when a report of the host was last started and
	// LastSuccess when one was last made from its agent's evidence, by any
	// verifier replica. Overdue: the last success (or, never attested, the
	// registration) is older than 1.5 × the verifier's attestation interval
	// (hvs.interval); an overdue host is never to be shown as trusted. A
	// disabled host is never overdue.
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	Overdue     bool       `json:"overdue"`
}

// HostRequest is the body of POST and PUT /hvs/v2/hosts.
type HostRequest struct {
	HostName         string   `json:"host_name"`
	ConnectionString string   `json:"connection_string"`
	Description      string   `json:"description"`
	FlavorGroupNames []string `json:"flavorgroup_names"`
}

// HostList is the body of GET /hvs/v2/hosts.
type HostList struct {
	Hosts []Host `json:"hosts"`
}

// HostStatus is one entry of GET /hvs/v2/host-status.
type HostStatus struct {
	HostID        string     `json:"host_id"`
	HostName      string     `json:"host_name"`
	Status        string     `json:"status"`
	StatusAt      *time.Time `json:"status_at,omitempty"`
	LastConnected *time.Time `json:"last_connected,omitempty"`
}

// HostStatusList is the body of GET /hvs/v2/host-status.
type HostStatusList struct {
	HostStatus []HostStatus `json:"host_status"`
}

// RebaselineRequest is the optional body of POST /hvs/v2/hosts/{id}/rebaseline.
type RebaselineRequest struct {
	PartialFlavorTypes []flavor.Part `json:"partial_flavor_types,omitempty"`
}

// FlavorRequest is the body of POST /hvs/v2/flavors: a live host
// (connection_string or host_id, with partial_flavor_types), or flavor
// content to sign, or signed flavors to check and store. The answer is a
// flavor.SignedFlavorCollection.
type FlavorRequest struct {
	ConnectionString       string                         `json:"connection_string,omitempty"`
	HostID                 string                         `json:"host_id,omitempty"`
	PartialFlavorTypes     []flavor.Part                  `json:"partial_flavor_types,omitempty"`
	FlavorGroupNames       []string                       `json:"flavorgroup_names,omitempty"`
	FlavorCollection       *flavor.FlavorCollection       `json:"flavor_collection,omitempty"`
	SignedFlavorCollection *flavor.SignedFlavorCollection `json:"signed_flavor_collection,omitempty"`
}

// FlavorGroupList is the body of GET /hvs/v2/flavorgroups.
type FlavorGroupList struct {
	Groups []flavor.Group `json:"flavorgroups"`
}

// ReportRequest is the body of POST /hvs/v2/reports: exactly one of the fields.
type ReportRequest struct {
	HostName     string `json:"host_name,omitempty"`
	HostID       string `json:"host_id,omitempty"`
	HardwareUUID string `json:"hardware_uuid,omitempty"`
}

// ReportQueued is the answer of POST /hvs/v2/reports?process=async.
type ReportQueued struct {
	HostID string `json:"host_id"`
	Status string `json:"status"`
}

// ReportList is the body of GET /hvs/v2/reports: reports (each a
// report.Report) newest first. NextAfterID, when set, is the afterId of the
// next page.
type ReportList struct {
	Reports     []json.RawMessage `json:"reports"`
	NextAfterID string            `json:"next_after_id,omitempty"`
}

// Media types of a report (GET /hvs/v2/reports/{id} with Accept or ?format).
const (
	MediaEAR = "application/eat+jwt"
	MediaJWS = "application/jose"
)
