package tcctl_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/restapi"
)

// goldenRoot is a root file system with one program, one shared library
// and one data file; it returns the root and the program's digest.
func goldenRoot(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"usr/bin/kata-runtime", []byte("#!/bin/sh\necho kata\n"), 0o755},
		{"usr/lib/libkata.so", append([]byte{0x7f, 'E', 'L', 'F'}, "library"...), 0o644},
		{"usr/share/doc/kata/README", []byte("not a program"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(files[0].data)
	return root, "sha256:" + hex.EncodeToString(sum[:])
}

func parsePolicy(t *testing.T, b []byte) *imapolicy.Policy {
	t.Helper()
	p, err := imapolicy.Parse(b)
	if err != nil {
		t.Fatalf("not a policy document: %v\n%.500s", err, b)
	}
	return p
}

func TestPolicyGenerate(t *testing.T) {
	root, runtime := goldenRoot(t)
	c := newCLI(t)
	fromDir := filepath.Join(t.TempDir(), "dir.json")
	c.must(t, "policy", "generate", "--from-dir", root, "--exclude", "/var/log/.*", "-o", fromDir)
	b, err := os.ReadFile(fromDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := parsePolicy(t, b)

	t.Run("from a directory the programs and libraries are hashed at their paths inside the root", func(t *testing.T) {
		if got := dir.Digests["/usr/bin/kata-runtime"]; len(got) != 1 || got[0] != runtime {
			t.Errorf("kata-runtime: %v, want [%s]", got, runtime)
		}
		if _, ok := dir.Digests["/usr/lib/libkata.so"]; !ok {
			t.Error("the shared library is not in the policy")
		}
		if _, ok := dir.Digests["/usr/share/doc/kata/README"]; ok {
			t.Error("a data file is in the policy")
		}
		if len(dir.Excludes) != 1 {
			t.Errorf("excludes %v", dir.Excludes)
		}
	})
	t.Run("from a known-good node's IMA log every measured file is allowed", func(t *testing.T) {
		out := c.must(t, "policy", "generate", "--from-log", "../imapolicy/testdata/vm-ima.log")
		p := parsePolicy(t, []byte(out))
		if len(p.Digests["/capture/usr/bin/bash"]) != 1 {
			t.Errorf("bash is not in the policy from the log")
		}
		if _, ok := p.Digests["boot_aggregate"]; ok {
			t.Error("the boot_aggregate entry is in the policy")
		}
	})
	t.Run("merging keeps every digest of every policy", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.json")
		if err := os.WriteFile(other, []byte(`{"meta":{"version":1},"digests":{"/usr/bin/kata-runtime":["sha256:`+strings.Repeat("ab", 32)+`"],"/opt/kata/bin/qemu":["sha256:`+strings.Repeat("cd", 32)+`"]}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		p := parsePolicy(t, []byte(c.must(t, "policy", "generate", "--merge", fromDir, other)))
		if len(p.Digests["/usr/bin/kata-runtime"]) != 2 || len(p.Digests["/opt/kata/bin/qemu"]) != 1 || len(p.Digests["/usr/lib/libkata.so"]) != 1 {
			t.Errorf("merged digests %v", p.Digests)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no source is refused", nil, "exactly one of"},
		{"two sources are refused", []string{"--from-dir", root, "--from-log", "x"}, "exactly one of"},
		{"a merge of nothing is refused", []string{"--merge"}, "needs policy documents"},
		{"a merge of a bad document names it", []string{"--merge", "../imapolicy/testdata/vm-ima.log"}, "vm-ima.log"},
		{"a log that is not an IMA log is refused", []string{"--from-log", fromDir}, "ima"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.run(append([]string{"policy", "generate"}, tc.args...)...)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestPolicyCommands creates, updates, shows, assigns, unassigns and
// deletes a runtime policy on a real verifier.
func TestPolicyCommands(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	root, _ := goldenRoot(t)
	doc := filepath.Join(t.TempDir(), "kata.json")
	c.must(t, "policy", "generate", "--from-dir", root, "-o", doc)

	out := c.must(t, "policy", "create", "kata", "-f", doc, "--description", "kata nodes", "-o", "json")
	var created restapi.IMAPolicy
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create output: %v\n%s", err, out)
	}
	if created.Name != "kata" || created.Version != 1 || created.Description != "kata nodes" {
		t.Fatalf("created %+v", created)
	}
	rows := tableRows(c.must(t, "policy", "list"))
	if len(rows) != 2 || rows[0][1] != "NAME" || rows[1][1] != "kata" || rows[1][2] != "1" {
		t.Fatalf("list:\n%v", rows)
	}

	t.Run("get --document prints the document, which creates the same policy again", func(t *testing.T) {
		got := parsePolicy(t, []byte(c.must(t, "policy", "get", "kata", "--document")))
		want := parsePolicy(t, mustRead(t, doc))
		if got.Digest() != want.Digest() {
			t.Errorf("document %s, want %s", got.Digest(), want.Digest())
		}
	})
	t.Run("update stores the next version and the old one stays readable", func(t *testing.T) {
		next := filepath.Join(t.TempDir(), "next.json")
		c.must(t, "policy", "generate", "--merge", doc, "--exclude", "/tmp/.*", "-o", next)
		rows := tableRows(c.must(t, "policy", "update", "kata", "-f", next))
		if len(rows) != 2 || rows[1][2] != "2" {
			t.Fatalf("update:\n%v", rows)
		}
		first := tableRows(c.must(t, "policy", "get", created.ID, "--version", "1"))
		if len(first) != 2 || first[1][2] != "1 (latest 2)" {
			t.Errorf("version 1:\n%v", first)
		}
		if got := c.must(t, "policy", "get", "kata", "-o", "yaml"); !strings.Contains(got, "description: kata nodes") {
			t.Errorf("an update without --description lost it:\n%s", got)
		}
	})
	t.Run("a bad document is refused before it is sent", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(`{"meta":{"version":1},"allowlist":{}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.run("policy", "create", "bad", "-f", bad); err == nil || !strings.Contains(err.Error(), "allowlist") {
			t.Errorf("create with a bad document: %v", err)
		}
	})
	t.Run("an assigned policy is deleted only with --force", func(t *testing.T) {
		rows := tableRows(c.must(t, "policy", "assign", "kata", "--flavorgroup", "automatic"))
		if len(rows) != 2 || rows[1][5] != "automatic" {
			t.Fatalf("assign:\n%v", rows)
		}
		if _, _, err := c.run("policy", "delete", "kata"); err == nil || !strings.Contains(err.Error(), "force") {
			t.Errorf("delete while assigned: %v, want refused", err)
		}
		if _, _, err := c.run("policy", "assign", "kata"); err == nil {
			t.Error("an assignment of nothing was sent")
		}
		rows = tableRows(c.must(t, "policy", "unassign", "kata", "--flavorgroup", "automatic"))
		if len(rows) != 2 || rows[1][5] != "-" {
			t.Fatalf("unassign:\n%v", rows)
		}
		c.must(t, "policy", "assign", "kata", "--flavorgroup", "automatic")
		c.must(t, "policy", "delete", "kata", "--force")
		if rows := tableRows(c.must(t, "policy", "list")); len(rows) != 1 {
			t.Errorf("after delete the list has %d rows", len(rows))
		}
	})
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
