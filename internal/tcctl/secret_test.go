package tcctl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
)

// TestSecretCommands creates, lists, shows, rotates and deletes a key broker
// secret on a real verifier, and checks that no command prints the value.
func TestSecretCommands(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	const value = "s3cr3t-volume-key-0123456789"
	valueFile := secretFile(t, value)

	out := c.must(t, "secret", "create", "volume-key", "--value-file", valueFile, "--flavorgroup", "edge",
		"--host", "h1", "--bind-pcrs", "--pcrs", "0,7", "--max-evidence-age", "5m", "-o", "json")
	var created restapi.Secret
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create output: %v\n%s", err, out)
	}
	p := created.Policy
	if created.Version != 1 || p.MaxEvidenceAgeSeconds != 300 || !p.BindPCRs || len(p.PCRs) != 2 ||
		p.FlavorGroupNames[0] != "edge" || p.HostIDs[0] != "h1" {
		t.Fatalf("created %+v", created)
	}

	list := c.must(t, "secret", "list")
	rows := tableRows(list)
	if len(rows) != 2 || rows[1][1] != "volume-key" || rows[1][2] != "1" || rows[1][5] != "5m0s" || rows[1][6] != "[0 7]" {
		t.Fatalf("list:\n%s", list)
	}
	c.must(t, "secret", "rotate", "volume-key", "--value-file", secretFile(t, "the next value"))
	policy := c.must(t, "secret", "get-policy", "volume-key", "-o", "yaml")
	if !strings.Contains(policy, "version: 2") || !strings.Contains(policy, "bind_pcrs: true") {
		t.Errorf("get-policy after rotation:\n%s", policy)
	}
	for _, o := range []string{out, list, policy} {
		if strings.Contains(o, value) || strings.Contains(o, "the next value") {
			t.Errorf("a command printed the value:\n%s", o)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("secret", "create", "empty", "--value-file", empty, "--host", "h1"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("a secret with an empty value: %v, want refused", err)
	}
	if _, _, err := c.run("secret", "create", "nobody", "--value-file", valueFile); err == nil || !strings.Contains(err.Error(), "names no host") {
		t.Errorf("a policy naming nobody: %v, want the verifier's refusal", err)
	}
	c.must(t, "secret", "delete", "volume-key")
	if rows := tableRows(c.must(t, "secret", "list")); len(rows) != 1 {
		t.Errorf("after delete the list has %d rows", len(rows))
	}
}
