package tcctl_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// createReports registers a host without an agent and attests it n times
// (each report is untrusted and signed), returning the ids, oldest first.
func createReports(t *testing.T, c *cli, n int) []string {
	t.Helper()
	c.must(t, "host", "register", "--host-id", "edge-2", "--name", "edge-two")
	var ids []string
	for range n {
		var r struct {
			ID string `json:"id"`
		}
		out := c.must(t, "report", "create", "--host-id", "edge-2", "-o", "json")
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.ID) != 36 {
			t.Fatalf("report create (%v):\n%s", err, out)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

func TestReportGetTakesBackAShortID(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	ids := createReports(t, c, 2)
	a, b := ids[0], ids[1]
	shared := commonPrefix(a, b)
	if shared == "" || len(shared) == len(a) {
		t.Fatalf("ids %s and %s share no prefix: UUIDv7 ids of one second do", a, b)
	}
	tests := []struct {
		name, arg, wantID, wantErr string
	}{
		{name: "the last 8 characters the sandbox prints name the report", arg: a[len(a)-8:], wantID: a},
		{name: "a prefix that one report alone has names it", arg: b[:len(shared)+1], wantID: b},
		{name: "an upper-case short id is taken as the lower-case id", arg: strings.ToUpper(b[len(b)-8:]), wantID: b},
		{name: "the full id is taken as it is", arg: a, wantID: a},
		{name: "a prefix two reports share is refused and both are named", arg: shared,
			wantErr: `report id "` + shared + `" is ambiguous: 2 reports match (` + b + ", " + a + "); give more characters"},
		{name: "a short id no report has is refused", arg: "zzzzzzzz", wantErr: `no report among the latest 1000 has an id that starts or ends with "zzzzzzzz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := c.run("report", "get", tt.arg, "-o", "json")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("report get %s: %v, want error %q", tt.arg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("report get %s: %v", tt.arg, err)
			}
			var r struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID != tt.wantID {
				t.Fatalf("report get %s showed %q (%v), want %s", tt.arg, r.ID, err, tt.wantID)
			}
		})
	}
}

// completions runs cobra's hidden __complete command, as the shell
// scripts of tcctl completion do, and returns the offered words.
func completions(t *testing.T, c *cli, args ...string) []string {
	t.Helper()
	out := c.must(t, append([]string{"__complete"}, args...)...)
	var words []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, ":") { // the directive
			continue
		}
		word, _, _ := strings.Cut(line, "\t")
		words = append(words, word)
	}
	return words
}

func TestCompletionOffersTheVerifiersIDs(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	ids := createReports(t, c, 2)
	c.must(t, "flavor", "import", "-f", writeFile(t, "flavors.json", osFlavor))

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"report get completes report ids, newest first", []string{"report", "get", ""}, []string{ids[1], ids[0]}},
		{"flavor get completes flavor ids", []string{"flavor", "get", ""}, []string{"os-golden-1"}},
		{"flavor delete leaves out the ids already given", []string{"flavor", "delete", "os-golden-1", ""}, nil},
		{"host get completes host ids", []string{"host", "get", ""}, []string{"edge-2"}},
		{"report create completes --host-id", []string{"report", "create", "--host-id", ""}, []string{"edge-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := completions(t, c, tt.args...)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("__complete %s offers %q, want %q", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}

	t.Run("without a login nothing is offered", func(t *testing.T) {
		if got := completions(t, newCLI(t), "report", "get", ""); len(got) != 0 {
			t.Errorf("offers %q without a login", got)
		}
	})
}
