package tcctl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// osFlavor is a flavor collection of one OS flavor with one PCR rule.
const osFlavor = `{"flavors": [{
  "meta": {"id": "os-golden-1", "description": {"flavor_part": "OS", "label": "debian-12", "source": "test"}},
  "pcrs": [{"pcr": {"index": 8, "bank": "SHA256"}, "measurement": "` + "1111111111111111111111111111111111111111111111111111111111111111" + `", "pcr_matches": true}]
}]}`

const edgeGroup = `{"name": "edge", "flavor_match_policy_collection": {"flavor_match_policies": [
  {"flavor_part": "OS", "match_policy": {"match_type": "ANY_OF", "required": "REQUIRED"}}]}}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFlavorsRoundTrip imports a flavor collection (the verifier signs it),
// exports the signed collection, deletes the flavor and imports the signed
// collection back; a signed collection changed after signing is refused.
func TestFlavorsRoundTrip(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	c.must(t, "flavorgroup", "create", "-f", writeFile(t, "group.json", edgeGroup))

	out := c.must(t, "flavor", "import", "-f", writeFile(t, "flavors.json", osFlavor), "--flavorgroup", "edge")
	rows := tableRows(out)
	if len(rows) != 2 || rows[1][0] != "os-golden-1" || rows[1][1] != "OS" || rows[1][2] != "debian-12" {
		t.Fatalf("import output rows %q", rows)
	}
	signed := c.must(t, "flavor", "list", "--flavorgroup", "edge", "--part", "OS", "-o", "json")
	var coll struct {
		SignedFlavors []struct {
			Signature string `json:"signature"`
		} `json:"signed_flavors"`
	}
	if err := json.Unmarshal([]byte(signed), &coll); err != nil || len(coll.SignedFlavors) != 1 || coll.SignedFlavors[0].Signature == "" {
		t.Fatalf("signed collection (%v):\n%s", err, signed)
	}
	if rows := tableRows(c.must(t, "flavor", "list", "--part", "PLATFORM")); len(rows) != 1 {
		t.Errorf("PLATFORM flavors: %q, want none", rows)
	}
	if out := c.must(t, "flavor", "get", "os-golden-1", "-o", "yaml"); !strings.Contains(out, "flavor_part: OS") {
		t.Errorf("flavor get -o yaml:\n%s", out)
	}

	c.must(t, "flavor", "delete", "os-golden-1")
	if _, _, err := c.run("flavor", "get", "os-golden-1"); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("get after delete: %v", err)
	}

	t.Run("a signed collection changed after signing is refused with the cause", func(t *testing.T) {
		forged := strings.Replace(signed, `"debian-12"`, `"debian-13"`, 1)
		_, _, err := c.run("flavor", "import", "-f", writeFile(t, "forged.json", forged))
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "POST /hvs/v2/flavors") {
			t.Errorf("import of a forged signed collection: %v", err)
		}
	})
	t.Run("the exported signed collection imports again", func(t *testing.T) {
		out := c.must(t, "flavor", "import", "-f", writeFile(t, "signed.json", signed))
		if !strings.Contains(out, "os-golden-1") {
			t.Errorf("import output:\n%s", out)
		}
	})
	t.Run("a file that is neither kind of collection is refused before it is sent", func(t *testing.T) {
		_, _, err := c.run("flavor", "import", "-f", writeFile(t, "other.json", `{"flavor": {}}`))
		if err == nil || !strings.Contains(err.Error(), "want a flavor collection") {
			t.Errorf("import of another object: %v", err)
		}
	})
}

func TestFlavorGroupCommands(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	c.must(t, "flavorgroup", "create", "-f", writeFile(t, "group.json", edgeGroup))
	names := map[string]bool{}
	for _, r := range tableRows(c.must(t, "flavorgroup", "list"))[1:] {
		names[r[1]] = true
	}
	if !names["edge"] || !names["automatic"] || !names["host_unique"] {
		t.Errorf("groups %v, want edge and the defaults", names)
	}
	if rows := tableRows(c.must(t, "flavorgroup", "get", "edge")); len(rows) != 2 || rows[1][2] != "OS=ANY_OF/REQUIRED" {
		t.Errorf("get edge: %q", rows)
	}
	if _, _, err := c.run("flavorgroup", "create", "-f", writeFile(t, "bad.json", `{"name": "x", "flavor_match_policy_collection": {"flavor_match_policies": []}}`)); err == nil || !strings.Contains(err.Error(), "no match policy") {
		t.Errorf("create of a group without policies: %v", err)
	}
	if _, _, err := c.run("flavorgroup", "delete", "automatic"); err == nil || !strings.Contains(err.Error(), "409 Conflict") || !strings.Contains(err.Error(), "cannot be deleted") {
		t.Errorf("delete of the default group: %v", err)
	}
	c.must(t, "flavorgroup", "delete", "edge")
	if _, _, err := c.run("flavorgroup", "get", "edge"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get after delete: %v", err)
	}
}
