package docs_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
)

// images is the reader's container registry and the node's image store:
// go-containerregistry's in-memory registry on the loopback, to which the
// guide's image step pushes, and the pulled images, unpacked, from which the
// kubelet runs the pods' containers.
type images struct {
	host string // the registry's host:port
	dir  string

	mu     sync.Mutex
	pulled map[string]*image // by reference
}

// image is a pulled image: its file system and its configuration.
type image struct {
	root   string
	config v1.Config
}

func startRegistry(t *testing.T, dir string) *images {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &images{host: l.Addr().String(), dir: dir, pulled: map[string]*image{}}
}

// errNotPushed is an image from elsewhere than the registry the guide
// pushed to: the test cannot pull it.
var errNotPushed = errors.New("not in the registry the guide pushed to")

// pull fetches ref from the registry (a reference elsewhere is an image the
// guide did not push: an error) and unpacks it once.
func (s *images) pull(ctx context.Context, ref string) (*image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if im := s.pulled[ref]; im != nil {
		return im, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	if r.Context().RegistryStr() != s.host {
		return nil, fmt.Errorf("image %s: %w (%s)", ref, errNotPushed, s.host)
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(s.dir, d.Hex)
	if err := unpack(img, root); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", ref, err)
	}
	im := &image{root: root, config: cf.Config}
	s.pulled[ref] = im
	return im, nil
}

// unpack writes the directories and regular files of img's layers below root.
func unpack(img v1.Image, root string) error {
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(h.Mode)&0o755)
		default:
			err = fmt.Errorf("%s: only directories and regular files are expected", h.Name)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// command is what the container runs, as Kubernetes derives it from the
// image: the container's command replaces the entrypoint, its args the
// image's Cmd. The program is the image's file.
func (im *image) command(c corev1.Container) (string, []string, error) {
	argv := c.Command
	if len(argv) == 0 {
		argv = im.config.Entrypoint
		if len(c.Args) == 0 {
			argv = append(argv[:len(argv):len(argv)], im.config.Cmd...)
		}
	}
	argv = append(argv[:len(argv):len(argv)], c.Args...)
	if len(argv) == 0 {
		return "", nil, errors.New("the image has no entrypoint and the container no command")
	}
	return im.file(argv[0]), argv[1:], nil
}

// file is the path of an absolute path of the image's file system.
func (im *image) file(p string) string {
	return filepath.Join(im.root, filepath.Clean("/"+p))
}

// checkImages pulls the images the guide pushed and checks what a
// container runtime would run: the configuration of each Dockerfile in
// deploy/docker, and the binary inside, which prints the guide's version.
func checkImages(t *testing.T, reg *images, pushed string) {
	t.Helper()
	for _, tc := range []struct{ name, user, cmd string }{
		{"verifier", "65532:65532", "run"},
		{"trust-agent", "0:0", "run"},
		{"attestation-manager", "65532:65532", "run"},
		{"tcctl", "65532:65532", ""},
	} {
		ref := reg.host + "/trusted-compute/" + tc.name + ":0.1.0"
		if !strings.Contains(pushed, ref+"@sha256:") {
			t.Errorf("the image step did not print %s with its digest:\n%s", ref, pushed)
		}
		im, err := reg.pull(t.Context(), ref)
		if err != nil {
			t.Error(err)
			continue
		}
		c := im.config
		if c.User != tc.user || strings.Join(c.Entrypoint, " ") != "/usr/local/bin/"+tc.name || strings.Join(c.Cmd, " ") != tc.cmd ||
			c.Labels["org.opencontainers.image.version"] != "v0.1.0" {
			t.Errorf("%s: user %q entrypoint %q cmd %q labels %v", ref, c.User, c.Entrypoint, c.Cmd, c.Labels)
		}
		out, err := exec.CommandContext(t.Context(), im.file(c.Entrypoint[0]), "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "v0.1.0") {
			t.Errorf("%s version in %s: %v, %q; want v0.1.0", tc.name, ref, err, out)
		}
	}
}
