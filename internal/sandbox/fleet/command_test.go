package fleet

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestTheScenarioFlagCompletesTheScenarioNames(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"__complete", "--scenario", ""})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := append(append([]string{}, Scenarios...), "all", ":4")
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("completion of --scenario offers %q, want %q", got, want)
	}
}
