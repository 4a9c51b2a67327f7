package helm_test

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/strvals"
)

// setValues applies "helm --set" expressions to vals, with Helm's own
// parser: --set attestationManager.pollDuration=30 yields the integer 30.
func setValues(t *testing.T, vals map[string]any, sets ...string) map[string]any {
	t.Helper()
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("parse --set %s: %v", s, err)
		}
	}
	return vals
}

// TestValuesSchemaRefuses sets one wrong value at a time, as an operator
// would with --set, and wants the install refused by the charts'
// values.schema.json with a message that names the chart and the value.
func TestValuesSchemaRefuses(t *testing.T) {
	tests := []struct {
		name, set, wantErr string
	}{
		{"a poll duration that is neither minutes nor a duration", "attestationManager.pollDuration=abc",
			"attestationManager:\n- at '/pollDuration'"},
		{"a poll duration of zero minutes", "attestationManager.pollDuration=0",
			"attestationManager:\n- at '/pollDuration'"},
		{"a jitter of 5", "attestationManager.jitter=5",
			"attestationManager:\n- at '/jitter'"},
		{"a jitter of 0.6 (--set passes it as a string)", "attestationManager.jitter=0.6",
			"attestationManager:\n- at '/jitter'"},
		{"a negative jitter", "attestationManager.jitter=-0.1",
			"attestationManager:\n- at '/jitter'"},
		{"a misspelt manager key", "attestationManager.pollDurations=30",
			"attestationManager:\n- at '': additional properties 'pollDurations' not allowed"},
		{"a misspelt key of a nested object", "verifier.dashboard.enable=true",
			"verifier:\n- at '/dashboard': additional properties 'enable' not allowed"},
		{"a misspelt component", "verifer.replicas=1",
			"trusted-compute:\n- at '': additional properties 'verifer' not allowed"},
		{"an unknown golden flavor policy", "attestationManager.goldenFlavors=sometimes",
			"attestationManager:\n- at '/goldenFlavors': value must be one of 'everyBoot', 'firstBoot', 'provided'"},
		{"an unknown database", "verifier.database.type=mysql",
			"verifier:\n- at '/database/type': value must be one of 'sqlite', 'postgres'"},
		{"an unknown log level", "trustAgent.logLevel=verbose",
			"trustAgent:\n- at '/logLevel': value must be one of"},
		{"an agent TPM access mode that does not exist", "trustAgent.tpm.deviceAccess=hostPath",
			"trustAgent:\n- at '/tpm/deviceAccess': value must be one of 'privileged', 'resource'"},
		{"a port above 65535", "verifier.service.port=70000",
			"verifier:\n- at '/service/port': maximum: got 70,000, want 65,535"},
		{"a port of zero", "attestationManager.metrics.port=0",
			"attestationManager:\n- at '/metrics/port': minimum: got 0, want 1"},
		{"a namespace name Kubernetes refuses", "attestationManager.evictNamespaces={Payments}",
			"attestationManager:\n- at '/evictNamespaces/0'"},
		{"a lease duration without a unit", "attestationManager.leaderElection.leaseDuration=15",
			"attestationManager:\n- at '/leaderElection/leaseDuration'"},
		{"a replica count that is a word", "verifier.replicas=three",
			"verifier:\n- at '/replicas': got string, want integer"},
		{"a CMS root pin that is not a SHA-384", "global.cmsRoot.sha384=abcd",
			"- at '/global/cmsRoot/sha384'"},
		{"a subchart switched on with a word", "trustedWorkload.enabled=yes",
			"trusted-compute:\n- at '/trustedWorkload/enabled': got string, want boolean"},
		{"a secret name that cannot name a file on the node", "trustAgent.secrets.names={../etc/shadow}",
			"trustAgent:\n- at '/secrets/names/0'"},
		{"a secrets directory that is not absolute", "trustAgent.secrets.hostPath=run/secrets",
			"trustAgent:\n- at '/secrets/hostPath'"},
		{"a name prefix Kubernetes refuses", "global.fullnameOverride=Edge_1",
			"- at '/global/fullnameOverride'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := setValues(t, values(t, "required.yaml"), tt.set)
			_, err := render(umbrellaChart, "tc", "tc", vals)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("--set %s: render error = %v, want one containing %q", tt.set, err, tt.wantErr)
			}
		})
	}
}

// TestSubchartSchemaRefusesAlone installs a subchart on its own: its schema
// still refuses a key it does not know.
func TestSubchartSchemaRefusesAlone(t *testing.T) {
	vals := setValues(t, map[string]any{}, "admin.existingSecret=tc-admin", "servce.port=8443")
	_, err := render(filepath.Join(umbrellaChart, "charts", "verifier"), "solo", "solo", vals)
	if want := "additional properties 'servce' not allowed"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("render error = %v, want one containing %q", err, want)
	}
}

// TestPollDurationTakesMinutesOrADuration sets the manager's durations the
// way operators do and wants them in its config as strings.
func TestPollDurationTakesMinutesOrADuration(t *testing.T) {
	tests := []struct {
		name      string
		set       string // as --set
		setString string // as --set-string
		key       string
		want      any // as the manager reads its YAML
	}{
		{name: "minutes given with --set as a number render as a string", set: "attestationManager.pollDuration=30", key: "pollDuration", want: "30"},
		{name: "minutes given with --set-string stay a string", setString: "attestationManager.pollDuration=45", key: "pollDuration", want: "45"},
		{name: "a Go duration is kept", set: "attestationManager.pollDuration=90m", key: "pollDuration", want: "90m"},
		{name: "a maximum evidence age in minutes renders as a string", set: "attestationManager.maxEvidenceAge=180", key: "maxEvidenceAge", want: "180"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := values(t, "required.yaml")
			if tt.set != "" {
				setValues(t, vals, tt.set)
			}
			if tt.setString != "" {
				if err := strvals.ParseIntoString(tt.setString, vals); err != nil {
					t.Fatalf("parse --set-string %s: %v", tt.setString, err)
				}
			}
			objs := mustRender(t, umbrellaChart, "tc", "tc", vals)
			cfg := managerConfigOf(t, objs, "tc-attestation-manager")
			checkConfigKeys(t, cfg)
			if cfg[tt.key] != tt.want {
				t.Errorf("manager %s = %#v, want %#v", tt.key, cfg[tt.key], tt.want)
			}
		})
	}
}
