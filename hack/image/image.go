package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const defaultSourceURL = "https://trustedcompute.io/tc"

// nonroot is distroless's unprivileged user and group.
const nonroot = "65532:65532"

// spec is one image: its binary and the configuration of its Dockerfile in
// deploy/docker.
type spec struct {
	name  string   // image, binary and ./cmd/<name>
	user  string   // uid:gid
	cmd   []string // default arguments
	ports []string // exposed ports
	title string
	// gcflags are the binary's own compiler flags: the trust agent is built
	// without inlining (-l), 0.6 MB smaller and as much less resident
	// (trust-agent.Dockerfile, docs/performance.md).
	gcflags string
}

// specs are the product's images, in the order they are built and printed.
var specs = []spec{
	{name: "verifier", user: nonroot, cmd: []string{"run"}, ports: []string{"8443/tcp", "4222/tcp"},
		title: "Trusted Compute verifier (AAS, CMS, HVS, NATS)"},
	// root without capabilities: the TCG and IMA logs are 0440 root:root
	// and /dev/tpmrm0 is root:tss 0660 (trust-agent.Dockerfile).
	{name: "trust-agent", user: "0:0", cmd: []string{"run"}, title: "Trusted Compute trust agent", gcflags: "all=-l"},
	{name: "attestation-manager", user: nonroot, cmd: []string{"run"}, title: "Trusted Compute attestation manager"},
	{name: "tcctl", user: nonroot, title: "Trusted Compute admin CLI"},
}

// options are the command line.
type options struct {
	registry, version, tag, platforms, tarball, source, revision, sourceURL string
	sourceDateEpoch                                                         string // SOURCE_DATE_EPOCH
	images                                                                  []string
}

// plan is what to build, checked before anything is built.
type plan struct {
	specs     []spec
	refs      []name.Tag // one per spec
	platforms []v1.Platform
	version   string
	source    string
	tarball   string
	labels    map[string]string
	created   time.Time
}

var (
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$`)
	// errUsage marks a problem with the command line.
	errUsage = errors.New("usage")
)

func (o *options) plan(ctx context.Context) (*plan, error) {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...))
	}
	p := &plan{version: o.version, source: o.source, tarball: o.tarball}
	if o.registry == "" {
		bad("--registry is required (the repository the images are named under, e.g. registry.example.net/trusted-compute)")
	} else if _, err := name.NewRepository(o.registry + "/verifier"); err != nil {
		bad("--registry %q: %v", o.registry, err)
	}
	if !versionRE.MatchString(o.version) {
		bad("--version %q: want letters, digits and . + _ - (e.g. v0.1.0)", o.version)
	}
	tag := o.tag
	if tag == "" {
		tag = strings.TrimPrefix(o.version, "v")
	}
	for _, want := range cmpOr(o.images, names()) {
		i := slices.IndexFunc(specs, func(s spec) bool { return s.name == want })
		if i < 0 {
			bad("unknown image %q: want one of %s", want, strings.Join(names(), ", "))
			continue
		}
		p.specs = append(p.specs, specs[i])
	}
	for _, s := range strings.Split(o.platforms, ",") {
		pl, err := parsePlatform(s)
		if err != nil {
			bad("--platform: %v", err)
			continue
		}
		p.platforms = append(p.platforms, pl)
	}
	if o.tarball != "" && len(p.platforms) > 1 {
		bad("--tarball takes one platform (docker load reads no image index), got %d", len(p.platforms))
	}
	epoch, err := parseEpoch(o.sourceDateEpoch)
	if err != nil {
		problems = append(problems, err)
	}
	p.created = epoch
	if o.registry != "" {
		for _, s := range p.specs {
			ref, err := name.NewTag(o.registry + "/" + s.name + ":" + tag)
			if err != nil {
				bad("image name %s/%s:%s: %v", o.registry, s.name, tag, err)
				break
			}
			p.refs = append(p.refs, ref)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	revision := o.revision
	if revision == "" {
		revision = gitRevision(ctx, o.source)
	}
	p.labels = map[string]string{
		"org.opencontainers.image.version": o.version,
		"org.opencontainers.image.source":  o.sourceURL,
	}
	if revision != "" {
		p.labels["org.opencontainers.image.revision"] = revision
	}
	return p, nil
}

func names() []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name)
	}
	return out
}

func cmpOr(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// parsePlatform reads os/arch[/variant]; only Linux images are built.
func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "linux" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("%q: want linux/<arch>[/<variant>], e.g. linux/amd64 or linux/arm64", s)
	}
	pl := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	return pl, nil
}

// parseEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org); unset
// is the Unix epoch.
func parseEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH %q: want seconds since 1970", errUsage, v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// gitRevision is the commit checked out in dir, or "" outside a checkout.
func gitRevision(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--verify", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// execute builds the binaries, assembles the images and pushes or writes them.
func (p *plan) execute(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
	work, err := os.MkdirTemp("", "tc-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	// images[i][j]: spec i on platform j.
	images := make([][]v1.Image, len(p.specs))
	for _, pl := range p.platforms {
		dir := filepath.Join(work, pl.OS+"-"+pl.Architecture+pl.Variant)
		log.InfoContext(ctx, "building", "platform", pl.String(), "images", len(p.specs))
		if err := p.build(ctx, pl, dir); err != nil {
			return err
		}
		for i, s := range p.specs {
			bin, err := os.ReadFile(filepath.Join(dir, s.name))
			if err != nil {
				return fmt.Errorf("read the built %s: %w", s.name, err)
			}
			img, err := assemble(s, pl, bin, p.labels, p.created)
			if err != nil {
				return fmt.Errorf("assemble %s for %s: %w", s.name, pl.String(), err)
			}
			images[i] = append(images[i], img)
		}
	}
	if p.tarball != "" {
		return p.writeTarball(images, stdout)
	}
	return p.push(ctx, log, images, stdout)
}

// build runs go build for every image of the plan on one platform, into
// dir: one go build for the binaries that share their compiler flags.
func (p *plan) build(ctx context.Context, pl v1.Platform, dir string) error {
	var flags []string // in the order of the specs
	pkgs := map[string][]string{}
	for _, s := range p.specs {
		if _, ok := pkgs[s.gcflags]; !ok {
			flags = append(flags, s.gcflags)
		}
		pkgs[s.gcflags] = append(pkgs[s.gcflags], "./cmd/"+s.name)
	}
	for _, gcflags := range flags {
		args := []string{"build", "-trimpath", "-buildvcs=false", "-tags", "tc_nosimulator",
			"-ldflags", "-s -w -X main.version=" + p.version}
		if gcflags != "" {
			args = append(args, "-gcflags", gcflags)
		}
		args = append(args, "-o", dir+"/")
		cmd := exec.CommandContext(ctx, "go", append(args, pkgs[gcflags]...)...)
		cmd.Dir = p.source
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+pl.OS, "GOARCH="+pl.Architecture)
		if pl.Variant != "" && pl.Architecture == "arm" {
			cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(pl.Variant, "v"))
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build for %s in %s: %w\n%s", pl.String(), p.source, err, out)
		}
	}
	return nil
}

// assemble makes the image of spec s from its binary: one layer, the
// configuration of its Dockerfile, no base image.
func assemble(s spec, pl v1.Platform, bin []byte, labels map[string]string, created time.Time) (v1.Image, error) {
	layerTar, err := rootFS(s.name, bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: pl.Architecture, OS: pl.OS, Variant: pl.Variant,
		Created: v1.Time{Time: created},
		Config: v1.Config{
			User:       s.user,
			Entrypoint: []string{"/usr/local/bin/" + s.name},
			Cmd:        s.cmd,
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
			Labels:     map[string]string{"org.opencontainers.image.title": s.title},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	for k, v := range labels {
		cfg.Config.Labels[k] = v
	}
	if len(s.ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range s.ports {
			cfg.Config.ExposedPorts[port] = struct{}{}
		}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image: /usr/local/bin/" + s.name + ", /etc/passwd, /etc/group",
		},
	})
}

// passwd and group are distroless's: root, nobody and nonroot (65532).
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
)

// rootFS is the layer: the binary at /usr/local/bin/<name> and the files a
// non-root process expects.
func rootFS(binName string, bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(p string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("home", 0o755, 0) },
		func() error { return dir("home/nonroot", 0o700, 65532) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/local", 0o755, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0) },
		func() error { return file("usr/local/bin/"+binName, 0o755, bin) },
		tw.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("the layer's tar: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// writeTarball writes every image (one platform) to the tarball.
func (p *plan) writeTarball(images [][]v1.Image, stdout io.Writer) error {
	refs := map[name.Reference]v1.Image{}
	for i, ref := range p.refs {
		refs[ref] = images[i][0]
	}
	if err := tarball.MultiRefWriteToFile(p.tarball, refs); err != nil {
		return fmt.Errorf("write %s: %w", p.tarball, err)
	}
	for i, ref := range p.refs {
		d, err := images[i][0].Digest()
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s %s (in %s)\n", ref, d, p.tarball); err != nil {
			return err
		}
	}
	return nil
}

// push writes each image (or, for several platforms, an index of them) to
// the registry and prints its reference with the digest.
func (p *plan) push(ctx context.Context, log *slog.Logger, images [][]v1.Image, stdout io.Writer) error {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(loopbackOnlyHTTP{next: remote.DefaultTransport}),
	}
	for i, ref := range p.refs {
		log.InfoContext(ctx, "pushing", "image", ref.String())
		var (
			digest v1.Hash
			err    error
		)
		if len(images[i]) == 1 {
			err = remote.Write(ref, images[i][0], opts...)
			if err == nil {
				digest, err = images[i][0].Digest()
			}
		} else {
			idx := index(images[i], p.platforms)
			err = remote.WriteIndex(ref, idx, opts...)
			if err == nil {
				digest, err = idx.Digest()
			}
		}
		if err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		if _, err := fmt.Fprintf(stdout, "%s@%s\n", ref, digest); err != nil {
			return err
		}
	}
	return nil
}

// index is a multi-platform image index of imgs.
func index(imgs []v1.Image, platforms []v1.Platform) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for j, img := range imgs {
		pl := platforms[j]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &pl},
		})
	}
	return idx
}

// loopbackOnlyHTTP refuses plain-HTTP requests to anything but the
// loopback. go-containerregistry falls back to HTTP for localhost and for
// private (RFC 1918) addresses; only the loopback may get it here.
type loopbackOnlyHTTP struct{ next http.RoundTripper }

// errPlainHTTP is a plain-HTTP request to a registry off the loopback.
var errPlainHTTP = errors.New("plain HTTP is used only for a registry on the loopback (localhost, 127.0.0.1, [::1]); this one must serve HTTPS")

func (l loopbackOnlyHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !isLoopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("%s: %w", r.URL.Host, errPlainHTTP)
	}
	return l.next.RoundTrip(r)
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
