package deps

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEveryEnvironmentVariableIsDocumented checks that docs/config.md names
// every TC_* variable each binary reads (its Config's env tags), so that the
// reference cannot drift from the loader.
func TestEveryEnvironmentVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"trust-agent", "verifier", "attestation-manager"} {
		out, err := exec.Command("go", "test", "-count=1", "-run", "^TestPrintEnvKeys$", "-v", "../../cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: list env keys: %v\n%s", cmd, err, out)
		}
		var keys []string
		for line := range strings.SplitSeq(string(out), "\n") {
			if k, ok := strings.CutPrefix(line, "ENVKEY "); ok {
				keys = append(keys, strings.TrimSpace(k))
			}
		}
		if len(keys) == 0 {
			t.Fatalf("%s printed no env keys:\n%s", cmd, out)
		}
		for _, k := range keys {
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("docs/config.md does not document %s (read by %s)", k, cmd)
			}
		}
	}
}
