package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRenewedCredentialsReplaceTheFileReadableByTheOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.creds")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, readErr := os.ReadFile(path)
	fi, statErr := os.Stat(path)
	if readErr != nil || statErr != nil {
		t.Fatal(readErr, statErr)
	}
	if string(got) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file holds %q with mode %v, want \"new\" with 0600", got, fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("%d files left in the directory, want 1", len(entries))
	}
}

func TestCredentialsAreNotWrittenToAReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.creds")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := writeFileAtomic(path, []byte("new")); err == nil {
		t.Fatal("wrote into a read-only directory")
	}
}
