package restapi

import (
	"time"

	"trustedcompute.io/tc/internal/verifier/auth"
)

// TokenRequest is the body of POST /aas/v1/token; the answer is the JWT
// (application/jwt).
type TokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// UserRequest is the body of POST /aas/v1/users.
type UserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// PasswordRequest is the body of PUT /aas/v1/users/{id}.
type PasswordRequest struct {
	Password string `json:"password"`
}

// User is a user as AAS shows it: never the password hash.
type User struct {
	ID          string     `json:"id"`
	Username    string     `json:"username"`
	CreatedAt   time.Time  `json:"created_at"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

// RoleRequest is the body of POST /aas/v1/roles.
type RoleRequest struct {
	Service     string   `json:"service"`
	Name        string   `json:"name"`
	Context     string   `json:"context"`
	Permissions []string `json:"permissions"`
}

// Role is a role as AAS shows it.
type Role struct {
	ID          string    `json:"id"`
	Service     string    `json:"service"`
	Name        string    `json:"name"`
	Context     string    `json:"context,omitempty"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
}

// PermissionsRequest is the body of PUT /aas/v1/roles/{id}/permissions.
type PermissionsRequest struct {
	Permissions []string `json:"permissions"`
}

// UserRolesRequest is the body of POST /aas/v1/users/{id}/roles.
type UserRolesRequest struct {
	RoleIDs []string `json:"role_ids"`
}

// CustomClaimsRequest is the body of POST /aas/v1/custom-claims-token; the
// answer is the JWT (application/jwt).
type CustomClaimsRequest struct {
	Subject         string       `json:"subject"`
	ValiditySeconds int64        `json:"validity_seconds"`
	Claims          CustomClaims `json:"claims"`
}

// CustomClaims are the roles and permissions a custom claims token carries.
type CustomClaims struct {
	Roles       []auth.Role       `json:"roles"`
	Permissions []auth.Permission `json:"permissions"`
}

// CredentialsRequest is the body of POST /aas/v1/credentials; the answer is
// a NATS credentials file (text/plain).
type CredentialsRequest struct {
	Type       string            `json:"type"`
	Parameters map[string]string `json:"parameters"`
}

// Types of CredentialsRequest.
const (
	CredentialsAgent   = "TA"  // a trust agent's; needs ParamHostID
	CredentialsHVS     = "HVS" // the verifier's HVS
	CredentialsManager = "AM"  // the attestation manager's
)

// ParamHostID is the CredentialsRequest parameter naming the host of a
// trust agent's credentials.
const ParamHostID = "host-id"

// ParamBusGrammar is the CredentialsRequest parameter naming the grammar
// of a trust agent's own bus subjects (bus.AgentGrammar): "2" for
// trust-agent.<host-id>.> and trust-events.<host-id>.> alone, which agents
// from 2026-12 on use; "1" or none for the split grammar every agent
// knows. An agent from 2026-12 on renews into "2" by itself when its
// credentials are due.
const ParamBusGrammar = "bus-grammar"
