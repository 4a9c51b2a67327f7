package helm_test

import (
	"strings"
	"testing"
)

// TestNotesNameTheObjectsAsRendered installs with the subcharts' name
// overrides and wants the NOTES to point at the objects that exist.
func TestNotesNameTheObjectsAsRendered(t *testing.T) {
	urls := []string{
		"trustAgent.nats.url=tls://tcv-nats.tc.svc:4222",
		"attestationManager.verifier.url=https://tcv.tc.svc:8443",
		"attestationManager.nats.url=tls://tcv-nats.tc.svc:4222",
	}
	tests := []struct {
		name               string
		set, want, notWant []string
	}{
		{
			name: "the default names are the release's",
			want: []string{"https://tc-verifier.tc.svc:8443", "tls://tc-verifier-nats.tc.svc:4222",
				"statefulset/tc-verifier ", "deployment/tc-attestation-manager"},
		},
		{
			name:    "fullnameOverride of the verifier and the manager reaches the URLs and commands",
			set:     append([]string{"verifier.fullnameOverride=tcv", "attestationManager.fullnameOverride=tcm"}, urls...),
			want:    []string{"https://tcv.tc.svc:8443", "tls://tcv-nats.tc.svc:4222", "statefulset/tcv ", "deployment/tcm"},
			notWant: []string{"tc-verifier", "tc-attestation-manager"},
		},
		{
			name: "nameOverride of the verifier keeps the release prefix",
			set: []string{"verifier.nameOverride=attestation", "trustAgent.nats.url=tls://tc-attestation-nats.tc.svc:4222",
				"attestationManager.verifier.url=https://tc-attestation.tc.svc:8443", "attestationManager.nats.url=tls://tc-attestation-nats.tc.svc:4222"},
			want:    []string{"https://tc-attestation.tc.svc:8443", "statefulset/tc-attestation "},
			notWant: []string{"tc-verifier"},
		},
		{
			name: "the dashboard and the evict namespaces are shown when on",
			set:  []string{"verifier.dashboard.enabled=true", "attestationManager.evictNamespaces={payments}"},
			want: []string{"Dashboard:     https://tc-verifier.tc.svc:9443", "pods of failed nodes in: payments"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := setValues(t, values(t, "required.yaml"), tt.set...)
			rel, err := install(umbrellaChart, "tc", "tc", vals)
			if err != nil {
				t.Fatalf("install: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(rel.Info.Notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, rel.Info.Notes)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(rel.Info.Notes, w) {
					t.Errorf("NOTES name %q, which is not rendered:\n%s", w, rel.Info.Notes)
				}
			}
			if tt.set == nil {
				return
			}
			// What the NOTES name exists.
			objs := mustRender(t, umbrellaChart, "tc", "tc", vals)
			for _, w := range tt.want {
				if kind, name, ok := strings.Cut(strings.TrimSpace(w), "/"); ok && (kind == "statefulset" || kind == "deployment") {
					find(t, objs, map[string]string{"statefulset": "StatefulSet", "deployment": "Deployment"}[kind], name)
				}
			}
		})
	}
}

// TestARenamedVerifierNeedsTheURLsOfItsUsers: the agent and the manager
// cannot see the verifier's name override, so their default URLs would
// point at a Service that does not exist; the chart says what to set.
func TestARenamedVerifierNeedsTheURLsOfItsUsers(t *testing.T) {
	vals := setValues(t, values(t, "required.yaml"), "verifier.fullnameOverride=tcv")
	_, err := render(umbrellaChart, "tc", "tc", vals)
	want := "the verifier is named tcv (verifier.fullnameOverride or nameOverride): set trustAgent.nats.url, attestationManager.verifier.url, attestationManager.nats.url to its Services (https://tcv.tc.svc:8443, tls://tcv-nats.tc.svc:4222)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("render error = %v, want one containing %q", err, want)
	}
}
