package helm_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"trustedcompute.io/tc/internal/errtest"
)

// renderedManagerConfig renders the umbrella chart and returns the
// manager's config.yaml.
func renderedManagerConfig(t *testing.T, overrides map[string]any) (map[string]any, error) {
	t.Helper()
	vals := values(t, "required.yaml")
	for path, v := range overrides {
		set(vals, path, v)
	}
	objs, err := render(umbrellaChart, "tc", "tc", vals)
	if err != nil {
		return nil, err
	}
	return managerConfigOf(t, objs, "tc-attestation-manager"), nil
}

// managerConfigOf returns the config.yaml of the manager's ConfigMap name
// among the rendered objs.
func managerConfigOf(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	data, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", name).Object, "data", "config.yaml")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatalf("parse manager config: %v", err)
	}
	return cfg
}

func TestTheManagerNeedsDiskEncryptionMeasuredUnlessTheValuesSayClaimed(t *testing.T) {
	tests := []struct {
		name          string
		set           map[string]any
		want, wantErr string
	}{
		{name: "measured by default", want: "measured"},
		{name: "claimed when the operator accepts the agent's word", set: map[string]any{"attestationManager.diskEncryption": "claimed"}, want: "claimed"},
		{name: "an unknown policy is refused", set: map[string]any{"attestationManager.diskEncryption": "trusted"},
			wantErr: "attestationManager:\n- at '/diskEncryption': value must be one of 'measured', 'claimed'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := renderedManagerConfig(t, tt.set)
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			if cfg["diskEncryption"] != tt.want {
				t.Fatalf("diskEncryption = %v, want %s", cfg["diskEncryption"], tt.want)
			}
		})
	}
}
