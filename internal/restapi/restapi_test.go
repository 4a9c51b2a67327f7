package restapi

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// TestWireNamesStayAsServed pins the JSON of every body: the field names are
// what servers and clients of other versions exchange, so a renamed field or
// a changed omitempty must fail here, not in the field.
func TestWireNamesStayAsServed(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	resets := uint32(3)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"a host shows every field", Host{ID: "h1", HostName: "edge-1", ConnectionString: "nats://h1", Description: "d",
			HardwareUUID: "u", FlavorGroupNames: []string{"automatic"}, Status: "CONNECTED", LastConnected: &at,
			ResetCount: &resets, RebootedAt: &at, Created: at, Disabled: true, DisabledAt: &at, EnrollmentError: "e",
			LastAttempt: &at, LastSuccess: &at, Overdue: true},
			`{"id":"h1","host_name":"edge-1","connection_string":"nats://h1","description":"d","hardware_uuid":"u","flavorgroup_names":["automatic"],"status":"CONNECTED","last_connected":"2026-12-04T15:00:00Z","reset_count":3,"rebooted_at":"2026-12-04T15:00:00Z","created":"2026-12-04T15:00:00Z","disabled":true,"disabled_at":"2026-12-04T15:00:00Z","enrollment_error":"e","last_attempt":"2026-12-04T15:00:00Z","last_success":"2026-12-04T15:00:00Z","overdue":true}`},
		{"a host leaves out what is unknown", Host{ID: "h1", FlavorGroupNames: []string{}, Created: at},
			`{"id":"h1","host_name":"","connection_string":"","description":"","flavorgroup_names":[],"status":"","created":"2026-12-04T15:00:00Z","disabled":false,"overdue":false}`},
		{"a host request", HostRequest{HostName: "edge-1", ConnectionString: "nats://h1", Description: "d", FlavorGroupNames: []string{"g"}},
			`{"host_name":"edge-1","connection_string":"nats://h1","description":"d","flavorgroup_names":["g"]}`},
		{"a host list", HostList{Hosts: []Host{}}, `{"hosts":[]}`},
		{"a host status list", HostStatusList{HostStatus: []HostStatus{{HostID: "h1", HostName: "edge-1", Status: "CONNECTED", StatusAt: &at, LastConnected: &at}}},
			`{"host_status":[{"host_id":"h1","host_name":"edge-1","status":"CONNECTED","status_at":"2026-12-04T15:00:00Z","last_connected":"2026-12-04T15:00:00Z"}]}`},
		{"a rebaseline request", RebaselineRequest{PartialFlavorTypes: []flavor.Part{flavor.PartPlatform}}, `{"partial_flavor_types":["PLATFORM"]}`},
		{"an empty rebaseline request", RebaselineRequest{}, `{}`},
		{"a flavor request from a host", FlavorRequest{ConnectionString: "nats://h1", HostID: "h1", PartialFlavorTypes: []flavor.Part{flavor.PartOS}, FlavorGroupNames: []string{"g"}},
			`{"connection_string":"nats://h1","host_id":"h1","partial_flavor_types":["OS"],"flavorgroup_names":["g"]}`},
		{"a flavor request with content", FlavorRequest{FlavorCollection: &flavor.FlavorCollection{Flavors: []flavor.Flavor{}}, SignedFlavorCollection: &flavor.SignedFlavorCollection{SignedFlavors: []flavor.SignedFlavor{}}},
			`{"flavor_collection":{"flavors":[]},"signed_flavor_collection":{"signed_flavors":[]}}`},
		{"a flavor group list", FlavorGroupList{Groups: []flavor.Group{}}, `{"flavorgroups":[]}`},
		{"a report request", ReportRequest{HostName: "edge-1", HostID: "h1", HardwareUUID: "u"}, `{"host_name":"edge-1","host_id":"h1","hardware_uuid":"u"}`},
		{"a report request names one host", ReportRequest{HostID: "h1"}, `{"host_id":"h1"}`},
		{"a queued report", ReportQueued{HostID: "h1", Status: "QUEUE"}, `{"host_id":"h1","status":"QUEUE"}`},
		{"a report list", ReportList{Reports: []json.RawMessage{json.RawMessage(`{"id":"r1"}`)}, NextAfterID: "r1"}, `{"reports":[{"id":"r1"}],"next_after_id":"r1"}`},
		{"a token request", TokenRequest{Username: "u", Password: "p"}, `{"username":"u","password":"p"}`},
		{"a user request", UserRequest{Username: "u", Password: "p"}, `{"username":"u","password":"p"}`},
		{"a password request", PasswordRequest{Password: "p"}, `{"password":"p"}`},
		{"a user", User{ID: "u1", Username: "u", CreatedAt: at, LockedUntil: &at},
			`{"id":"u1","username":"u","created_at":"2026-12-04T15:00:00Z","locked_until":"2026-12-04T15:00:00Z"}`},
		{"a role request", RoleRequest{Service: "HVS", Name: "Reader", Permissions: []string{"reports:search:*"}},
			`{"service":"HVS","name":"Reader","context":"","permissions":["reports:search:*"]}`},
		{"a role", Role{ID: "r1", Service: "CMS", Name: "CertApprover", Context: "CN=x", Permissions: []string{}, CreatedAt: at},
			`{"id":"r1","service":"CMS","name":"CertApprover","context":"CN=x","permissions":[],"created_at":"2026-12-04T15:00:00Z"}`},
		{"a permissions request", PermissionsRequest{Permissions: []string{"a:b:c"}}, `{"permissions":["a:b:c"]}`},
		{"a user roles request", UserRolesRequest{RoleIDs: []string{"r1"}}, `{"role_ids":["r1"]}`},
		{"a custom claims request", CustomClaimsRequest{Subject: "s", ValiditySeconds: 60, Claims: CustomClaims{
			Roles: []auth.Role{{Service: "HVS", Name: "Reader"}}, Permissions: []auth.Permission{{Service: "HVS", Rules: []string{"reports:search:*"}}}}},
			`{"subject":"s","validity_seconds":60,"claims":{"roles":[{"service":"HVS","name":"Reader"}],"permissions":[{"service":"HVS","rules":["reports:search:*"]}]}}`},
		{"a credentials request", CredentialsRequest{Type: CredentialsAgent, Parameters: map[string]string{ParamHostID: "h1"}},
			`{"type":"TA","parameters":{"host-id":"h1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestLinksNoServer keeps the package a client can import without linking a
// server: tcctl and the manager take their wire types from here.
func TestLinksNoServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := regexp.MustCompile(`/internal/verifier/(hvs|aas|cms|enroll|store|bus\w*|agentclient|api)$|pgx|sqlite|nats-server|k8s\.io`)
	for _, dep := range strings.Fields(string(out)) {
		if forbidden.MatchString(dep) {
			t.Errorf("restapi links %s", dep)
		}
	}
}
