package restapi

import (
	"encoding/json"
	"time"
)

// IMAPolicyRequest is the body of POST /hvs/v2/ima-policies (Name and
// Policy required) and of PUT /hvs/v2/ima-policies/{id}, which stores
// Policy as the next version (Name, if given, must be the policy's).
// Policy is the runtime policy document (docs/ima-policy.md), up to 32 MiB.
type IMAPolicyRequest struct {
	Name string `json:"name,omitempty"`
	// Description, when given, replaces the policy's.
	Description *string         `json:"description,omitempty"`
	Policy      json.RawMessage `json:"policy"`
}

// IMAPolicy is an IMA runtime policy as HVS shows it: the latest version
// (or the one asked for with ?version=) and where it is assigned. Policy
// and Signature, the document and HVS's signature of it, come only from
// GET /hvs/v2/ima-policies/{id}.
type IMAPolicy struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Version counts the policy's documents: 1 at creation, one more at
	// every update. LatestVersion is the one reports use.
	Version       int64 `json:"version"`
	LatestVersion int64 `json:"latest_version"`
	// Digest is "sha256:<hex>" of the version's canonical document.
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// HostIDs and FlavorGroupNames are the policy's assignments; a host's
	// own policy wins over its flavor groups'.
	HostIDs          []string        `json:"host_ids"`
	FlavorGroupNames []string        `json:"flavorgroup_names"`
	Policy           json.RawMessage `json:"policy,omitempty"`
	Signature        string          `json:"signature,omitempty"`
}

// IMAPolicyList is the body of GET /hvs/v2/ima-policies.
type IMAPolicyList struct {
	Policies []IMAPolicy `json:"ima_policies"`
}

// IMAPolicyAssignment is the body of POST /hvs/v2/ima-policies/{id}/assign
// and /unassign: hosts by id or name, flavor groups by name.
type IMAPolicyAssignment struct {
	HostIDs          []string `json:"host_ids,omitempty"`
	HostNames        []string `json:"host_names,omitempty"`
	FlavorGroupNames []string `json:"flavorgroup_names,omitempty"`
}
