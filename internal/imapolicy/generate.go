package imapolicy

import (
	"bytes"
	"cmp"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"trustedcompute.io/tc/internal/appraise"
)

// DefaultDirs are the directories FromDir walks unless told otherwise:
// where a Linux system keeps its programs and shared libraries.
var DefaultDirs = []string{
	"/bin", "/sbin", "/lib", "/lib64", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64",
	"/usr/libexec", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/opt",
}

// DirOptions says which files FromDir hashes and how.
type DirOptions struct {
	// Dirs are the directories to walk, as absolute paths inside the root
	// (nil: DefaultDirs). A directory that is missing or a symbolic link
	// is skipped: the kernel records a file under its resolved path.
	Dirs []string
	// Alg is the digest algorithm, the one of the nodes' IMA (default
	// "sha256").
	Alg string
	// AllFiles hashes every regular file, not only the programs and shared
	// libraries (files with an execute bit or ELF magic).
	AllFiles bool
	// Excludes are copied into the policy.
	Excludes []string
	// Generator is recorded in meta.generator.
	Generator string
}

var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// FromDir makes a policy from a root file system directory: the digest of
// every regular program and shared library under opts.Dirs, recorded at
// its absolute path inside root. Files are read through an os.Root, so a
// symbolic link never leads outside root; symbolic links themselves are
// not recorded (their targets are, where they are walked). Spaces in a
// path are recorded as "_", as the kernel writes them in its log.
func FromDir(root string, opts DirOptions) (*Policy, error) {
	alg := cmp.Or(opts.Alg, "sha256")
	h, ok := appraise.IMAHashAlg(alg)
	if !ok {
		return nil, fmt.Errorf("ima policy from %s: digest algorithm %q is not one of sha1, sha256, sha384, sha512", root, alg)
	}
	dirs := opts.Dirs
	if dirs == nil {
		dirs = DefaultDirs
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("ima policy from %s: %w", root, err)
	}
	defer func() { _ = r.Close() }()
	p := &Policy{Meta: Meta{Version: CurrentMetaVersion, Generator: opts.Generator}, Digests: map[string][]string{},
		Excludes: slices.Clone(opts.Excludes)}
	fsys := r.FS()
	buf := make([]byte, 256<<10)
	for _, dir := range dirs {
		rel := cmp.Or(strings.TrimPrefix(path.Clean("/"+dir), "/"), ".")
		info, err := r.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !info.IsDir()) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ima policy from %s: %w", root, err)
		}
		err = fs.WalkDir(fsys, rel, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			digest, ok, err := hashFile(r, name, h, opts.AllFiles, buf)
			if err != nil || !ok {
				return err
			}
			file := strings.ReplaceAll("/"+strings.TrimPrefix(name, "./"), " ", "_")
			p.Digests[file] = append(p.Digests[file], alg+":"+digest)
			if len(p.Digests) > MaxPaths {
				return fmt.Errorf("more than %d files", MaxPaths)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ima policy from %s: %w", root, err)
		}
	}
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	return p, nil
}

// hashFile hashes one file if it is a program or a shared library (or
// any file with all): ok is false for a file that is neither.
func hashFile(r *os.Root, name string, h crypto.Hash, all bool, buf []byte) (digest string, ok bool, err error) {
	f, err := r.Open(name)
	if err != nil {
		return "", false, err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return "", false, err
	}
	n, err := io.ReadFull(f, buf[:len(elfMagic)])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read %s: %w", name, err)
	}
	if !all && info.Mode().Perm()&0o111 == 0 && !bytes.Equal(buf[:n], elfMagic) {
		return "", false, nil
	}
	d := h.New()
	d.Write(buf[:n])
	if _, err := io.CopyBuffer(d, f, buf); err != nil {
		return "", false, fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(d.Sum(nil)), true, nil
}

// FromIMALog makes a policy from the ascii_runtime_measurements of a
// known-good node: every measured file's digest at its path, every ima-buf
// entry by name (in keyrings for a name that starts with "." as kernel
// keyrings do, in ima_buf otherwise). The boot_aggregate entry and
// violations are skipped. Every line must decode and match its template
// hash.
func FromIMALog(log string) (*Policy, error) {
	res, faults := appraise.ReplayIMA(log, nil, "SHA256")
	if len(faults) > 0 {
		return nil, fmt.Errorf("ima policy from an ima log: %s", faults[0].Description)
	}
	p := &Policy{Meta: Meta{Version: CurrentMetaVersion, Generator: "ima log"}}
	add := func(m *map[string][]string, name, digest string) {
		if *m == nil {
			*m = map[string][]string{}
		}
		if !slices.Contains((*m)[name], digest) {
			(*m)[name] = append((*m)[name], digest)
		}
	}
	for _, e := range res.Entries {
		if e.Violation() || e.Path == bootAggregateName {
			continue
		}
		d := e.FileHashAlg + ":" + hex.EncodeToString(e.FileHash)
		switch {
		case e.Template != appraise.TemplateIMABuf:
			add(&p.Digests, e.Path, d)
		case strings.HasPrefix(e.Path, "."):
			add(&p.Keyrings, e.Path, d)
		default:
			add(&p.IMABuf, e.Path, d)
		}
	}
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	return p, nil
}

// Merge returns the union of policies: every digest of every path,
// excludes, ima-buf entries and keys. The boot_aggregate is checked if any
// policy checks it; log_hash_alg, if set, must be the same in all.
func Merge(ps ...*Policy) (*Policy, error) {
	out := &Policy{Meta: Meta{Version: CurrentMetaVersion}}
	no := false
	out.BootAggregate = &no
	var generators []string
	union := func(dst *map[string][]string, src map[string][]string) {
		for name, ds := range src {
			if *dst == nil {
				*dst = map[string][]string{}
			}
			(*dst)[name] = append((*dst)[name], ds...)
		}
	}
	for i, p := range ps {
		if p == nil {
			return nil, fmt.Errorf("merge ima policies: policy %d is nil", i)
		}
		union(&out.Digests, p.Digests)
		union(&out.Keyrings, p.Keyrings)
		union(&out.IMABuf, p.IMABuf)
		out.Excludes = append(out.Excludes, p.Excludes...)
		out.VerificationKeys = append(out.VerificationKeys, p.VerificationKeys...)
		if p.ChecksBootAggregate() {
			yes := true
			out.BootAggregate = &yes
		}
		if p.LogHashAlg != "" {
			if out.LogHashAlg != "" && out.LogHashAlg != p.LogHashAlg {
				return nil, fmt.Errorf("merge ima policies: log_hash_alg %q and %q differ", out.LogHashAlg, p.LogHashAlg)
			}
			out.LogHashAlg = p.LogHashAlg
		}
		if p.Meta.Generator != "" && !slices.Contains(generators, p.Meta.Generator) {
			generators = append(generators, p.Meta.Generator)
		}
	}
	out.Meta.Generator = strings.Join(generators, " + ")
	if err := out.Normalize(); err != nil {
		return nil, fmt.Errorf("merge ima policies: %w", err)
	}
	return out, nil
}
