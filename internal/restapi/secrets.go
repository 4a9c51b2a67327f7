package restapi

import "time"

// Key broker secrets (/hvs/v2/secrets, docs/secrets.md). A secret's value
// is write-only: it goes in with POST and PUT and never comes back out of
// the API; only a Verified host's TPM gets it, sealed to that TPM.

// SecretPolicy is the release policy of a secret: which hosts may have it,
// and in what state. A host gets the secret only when its latest signed
// report is Verified and no older than MaxEvidenceAgeSeconds.
type SecretPolicy struct {
	// HostIDs and FlavorGroupNames select the hosts: a host named here, or
	// appraised against one of these flavor groups. A policy names at least
	// one host or group.
	HostIDs          []string `json:"host_ids,omitempty"`
	FlavorGroupNames []string `json:"flavorgroup_names,omitempty"`
	// AllowSecureBootOff releases to a Verified host whose quoted PCR 7
	// says Secure Boot is off (by default it is refused).
	AllowSecureBootOff bool `json:"allow_secure_boot_off,omitempty"`
	// AllowUnmeasuredDiskEncryption releases to a Verified host whose disk
	// encryption is not measured into PCR 15 (by default it is refused).
	AllowUnmeasuredDiskEncryption bool `json:"allow_unmeasured_disk_encryption,omitempty"`
	// MaxEvidenceAgeSeconds is the age past which a report is too old to
	// release on; the broker then attests the host afresh. It is also the
	// lease: the agent drops the secret when it ends without a renewal.
	// Zero means the default, 600.
	MaxEvidenceAgeSeconds int64 `json:"max_evidence_age_seconds,omitempty"`
	// BindPCRs seals the secret to the PCR values the report attests (the
	// PCRs of PCRs), so that the TPM unseals it only in that measured state.
	BindPCRs bool `json:"bind_pcrs,omitempty"`
	// PCRs are the SHA-256 PCRs BindPCRs binds to (default 0 to 7); each
	// must have a trusted PcrMatchesConstant rule in the report.
	PCRs []int `json:"pcrs,omitempty"`
}

// SecretRequest is the body of POST /hvs/v2/secrets.
type SecretRequest struct {
	Name string `json:"name"`
	// Value is the secret, base64 in JSON (at most 2048 bytes, what one
	// TPM sealed object holds).
	Value  []byte       `json:"value"`
	Policy SecretPolicy `json:"policy"`
}

// SecretUpdate is the body of PUT /hvs/v2/secrets/{id}: a new value
// (rotation: the next version, released on the agents' next renewal), a
// new policy, or both.
type SecretUpdate struct {
	Value  []byte        `json:"value,omitempty"`
	Policy *SecretPolicy `json:"policy,omitempty"`
}

// Secret is a secret as the API shows it: never its value.
type Secret struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Version int64        `json:"version"`
	Policy  SecretPolicy `json:"policy"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
}

// SecretList is the body of GET /hvs/v2/secrets.
type SecretList struct {
	Secrets []Secret `json:"secrets"`
}
