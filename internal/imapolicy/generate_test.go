package imapolicy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

// rootFS writes a small root file system: programs, a shared library
// without an execute bit, a data file, and symbolic links that point
// outside the root.
func rootFS(t *testing.T) (root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/kubelet", "kubelet binary", 0o755)
	write("usr/lib/x86_64-linux-gnu/libc.so.6", "\x7fELF libc", 0o644)
	write("usr/lib/os-release", "NAME=test", 0o644)
	write("opt/kata/bin/my runtime", "#!/bin/sh\n", 0o755)
	write("usr/share/doc/tool", "not walked", 0o755)
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("\x7fELF outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"usr/bin/outside":     filepath.Join(outside, "secret"),
		"usr/bin/relative":    "../../../../../../../../" + strings.TrimPrefix(filepath.Join(outside, "secret"), "/"),
		"usr/bin/sh":          "kubelet",
		"usr/lib/escape":      outside,
		"bin":                 "usr/bin",
		"usr/local/bin/evil":  "/",
		"usr/sbin/missing-to": "nowhere",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestFromDir(t *testing.T) {
	root, _ := rootFS(t)
	for _, tt := range []struct {
		name string
		opts DirOptions
		want map[string]string
	}{
		{"programs and shared libraries are hashed at their paths inside the root", DirOptions{}, map[string]string{
			"/usr/bin/kubelet":                    "kubelet binary",
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "\x7fELF libc",
			"/opt/kata/bin/my_runtime":            "#!/bin/sh\n",
		}},
		{"every regular file is hashed when asked", DirOptions{AllFiles: true, Dirs: []string{"/usr/lib"}}, map[string]string{
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "\x7fELF libc",
			"/usr/lib/os-release":                 "NAME=test",
		}},
		{"only the directories asked for are walked", DirOptions{Dirs: []string{"/usr/share", "/bin", "/nonexistent"}}, map[string]string{
			"/usr/share/doc/tool": "not walked",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromDir(root, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for path, ds := range p.Digests {
				got = append(got, path)
				want, ok := tt.want[path]
				if !ok {
					continue
				}
				if len(ds) != 1 || ds[0] != digestOfContent(want) {
					t.Errorf("%s: digests %v, want %s", path, ds, digestOfContent(want))
				}
			}
			slices.Sort(got)
			var want []string
			for path := range tt.want {
				want = append(want, path)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("paths %v, want %v (symbolic links and files outside the root are never recorded)", got, want)
			}
		})
	}
	t.Run("a generated policy allows the files it was made from", func(t *testing.T) {
		p, err := FromDir(root, DirOptions{Generator: "test"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		entries := []appraise.IMAEntry{entry("/usr/bin/kubelet", "kubelet binary"), entry("/opt/kata/bin/my_runtime", "#!/bin/sh\n")}
		if f := c.Appraise(entries, nil); len(f) != 0 {
			t.Fatalf("faults %+v", f)
		}
		if f := c.Appraise([]appraise.IMAEntry{entry("/usr/bin/kubelet", "another kubelet")}, nil); len(f) != 1 || f[0].Name != ImaPolicyDigestMismatch {
			t.Fatalf("a changed kubelet: faults %+v", f)
		}
	})
}

func TestMerge(t *testing.T) {
	a, err := Parse([]byte(`{"meta":{"version":1,"generator":"a"},"digests":{"/bin/x":["` + digestOfContent("x1") + `"]},"excludes":["^/tmp/.*"],"boot_aggregate":false}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(`{"meta":{"version":1,"generator":"b"},"digests":{"/bin/x":["` + digestOfContent("x2") + `"],"/bin/y":["` + digestOfContent("y") + `"]},"ima_buf":{"kexec-cmdline":["` + digestOfContent("ro") + `"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Digests["/bin/x"]) != 2 || len(m.Digests["/bin/y"]) != 1 || len(m.Excludes) != 1 || len(m.IMABuf) != 1 ||
		!m.ChecksBootAggregate() || m.Meta.Generator != "a + b" {
		t.Fatalf("merged %+v", m)
	}
	again, err := Merge(m, m)
	if err != nil || again.Digest() != m.Digest() {
		t.Fatalf("merging a policy with itself changed it: %v", err)
	}
	c, err := Parse([]byte(`{"meta":{"version":1},"log_hash_alg":"sha1"}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse([]byte(`{"meta":{"version":1},"log_hash_alg":"sha256"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(c, d); err == nil {
		t.Fatal("policies of two log hash algorithms merged")
	}
}

func TestFromIMALogRefusesAForgedLog(t *testing.T) {
	log, _ := realLog(t)
	forged := strings.Replace(log, "sha256:25c34e13", "sha256:25c34e14", 1)
	if forged == log {
		t.Fatal("the digest to forge is not in the log")
	}
	if _, err := FromIMALog(forged); err == nil || !strings.Contains(err.Error(), "template hash") {
		t.Fatalf("FromIMALog(forged) = %v, want a template hash error", err)
	}
}
