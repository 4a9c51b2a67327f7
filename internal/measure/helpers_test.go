package measure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustOpenRoot opens c's root, closed when the test ends.
func mustOpenRoot(t *testing.T, c *Collector) *os.Root {
	t.Helper()
	r, err := c.openRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// writeTree builds a file tree below a new temporary directory and returns
// it. A value starting with "-> " makes a symbolic link to the rest of the
// value; a key ending in "/" makes an empty directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func boolPtr(b bool) *bool { return &b }
