package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestTheCommandLineIsCheckedBeforeAnythingIsBuilt(t *testing.T) {
	ok := options{registry: "registry.example.net/tc", version: "v0.1.0", platforms: "linux/amd64", source: ".", revision: "abc"}
	for _, tc := range []struct {
		name  string
		edit  func(*options)
		epoch string
		want  []string // every one is in the error
	}{
		{"a registry is required", func(o *options) { o.registry = "" }, "", []string{"--registry is required"}},
		{"an unknown image is named with the known ones", func(o *options) { o.images = []string{"verifier", "dashboard"} }, "",
			[]string{`unknown image "dashboard"`, "verifier, trust-agent, attestation-manager, tcctl"}},
		{"a platform other than linux is refused", func(o *options) { o.platforms = "windows/amd64" }, "", []string{`"windows/amd64": want linux/<arch>`}},
		{"a platform without an architecture is refused", func(o *options) { o.platforms = "linux" }, "", []string{`"linux": want linux/<arch>`}},
		{"a tarball takes one platform", func(o *options) { o.platforms, o.tarball = "linux/amd64,linux/arm64", "x.tar" }, "",
			[]string{"--tarball takes one platform"}},
		{"a version that would break the linker flags is refused", func(o *options) { o.version = "v1 -X main.x=y" }, "", []string{`--version "v1 -X main.x=y"`}},
		{"a tag that is not a tag is refused", func(o *options) { o.tag = "0.1.0+build" }, "", []string{"image name registry.example.net/tc/verifier:0.1.0+build"}},
		{"a registry that is not a repository is refused", func(o *options) { o.registry = "Registry.Example.net/TC" }, "", []string{`--registry "Registry.Example.net/TC"`}},
		{"a bad SOURCE_DATE_EPOCH is refused", func(*options) {}, "yesterday", []string{`SOURCE_DATE_EPOCH "yesterday"`}},
		{"all problems are reported at once", func(o *options) { o.registry, o.platforms = "", "darwin/arm64" }, "",
			[]string{"--registry is required", `"darwin/arm64"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			o.sourceDateEpoch = tc.epoch
			tc.edit(&o)
			_, err := o.plan(t.Context())
			if err == nil {
				t.Fatal("plan accepted the command line")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("a good command line names the images under the registry with the version as tag", func(t *testing.T) {
		o := ok
		o.sourceDateEpoch = "1700000000"
		p, err := o.plan(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.refs {
			got = append(got, r.String())
		}
		want := "registry.example.net/tc/verifier:0.1.0 registry.example.net/tc/trust-agent:0.1.0 " +
			"registry.example.net/tc/attestation-manager:0.1.0 registry.example.net/tc/tcctl:0.1.0"
		if strings.Join(got, " ") != want {
			t.Errorf("refs %v, want %s", got, want)
		}
		if !p.created.Equal(time.Unix(1700000000, 0)) || p.labels["org.opencontainers.image.revision"] != "abc" {
			t.Errorf("created %v, labels %v", p.created, p.labels)
		}
	})
}

// layerFiles reads the single layer of img: name -> header and content.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name], data[h.Name] = h, b
	}
}

func TestAnImageCarriesItsDockerfilesConfigurationAndOnlyItsBinary(t *testing.T) {
	created := time.Unix(1700000000, 0).UTC()
	labels := map[string]string{"org.opencontainers.image.version": "v0.1.0", "org.opencontainers.image.revision": "abc"}
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	for _, tc := range []struct {
		spec       spec
		user       string
		cmd, ports string
	}{
		{specs[0], "65532:65532", "run", "4222/tcp 8443/tcp"},
		{specs[1], "0:0", "run", ""},
		{specs[2], "65532:65532", "run", ""},
		{specs[3], "65532:65532", "", ""},
	} {
		t.Run("the "+tc.spec.name+" image", func(t *testing.T) {
			img, err := assemble(tc.spec, arm, []byte("binary of "+tc.spec.name), labels, created)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
				len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("media types: manifest %s, config %s, layers %+v; want OCI", m.MediaType, m.Config.MediaType, m.Layers)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			var ports []string
			for p := range c.ExposedPorts {
				ports = append(ports, p)
			}
			if len(ports) == 2 && ports[0] > ports[1] {
				ports[0], ports[1] = ports[1], ports[0]
			}
			if c.User != tc.user || strings.Join(c.Entrypoint, " ") != "/usr/local/bin/"+tc.spec.name ||
				strings.Join(c.Cmd, " ") != tc.cmd || strings.Join(ports, " ") != tc.ports {
				t.Errorf("config user %q entrypoint %q cmd %q ports %q; want %q, /usr/local/bin/%s, %q, %q",
					c.User, c.Entrypoint, c.Cmd, ports, tc.user, tc.spec.name, tc.cmd, tc.ports)
			}
			if c.Labels["org.opencontainers.image.version"] != "v0.1.0" || c.Labels["org.opencontainers.image.revision"] != "abc" ||
				c.Labels["org.opencontainers.image.title"] == "" {
				t.Errorf("labels %v", c.Labels)
			}
			if cf.OS != "linux" || cf.Architecture != "arm64" || !cf.Created.Equal(created) {
				t.Errorf("config os %s arch %s created %v", cf.OS, cf.Architecture, cf.Created)
			}
			hdrs, data := layerFiles(t, img)
			bin := "usr/local/bin/" + tc.spec.name
			if string(data[bin]) != "binary of "+tc.spec.name || hdrs[bin].Mode != 0o755 || hdrs[bin].Uid != 0 {
				t.Errorf("%s: %q mode %o uid %d", bin, data[bin], hdrs[bin].Mode, hdrs[bin].Uid)
			}
			if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") ||
				!strings.Contains(string(data["etc/group"]), "nonroot:x:65532:") {
				t.Errorf("passwd %q group %q: no nonroot 65532", data["etc/passwd"], data["etc/group"])
			}
			if h := hdrs["home/nonroot/"]; h == nil || h.Uid != 65532 {
				t.Errorf("home/nonroot: %+v, want owned by 65532", h)
			}
			if h := hdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
				t.Errorf("tmp: %+v, want mode 1777", h)
			}
			for n, h := range hdrs {
				if !h.ModTime.Equal(created) {
					t.Errorf("%s has time %v, want SOURCE_DATE_EPOCH %v", n, h.ModTime, created)
				}
				if strings.HasPrefix(n, "usr/local/bin/") && n != bin && n != "usr/local/bin/" {
					t.Errorf("the layer holds another binary: %s", n)
				}
			}
		})
	}
	t.Run("the same binary gives the same digest and another binary another", func(t *testing.T) {
		digest := func(bin string) v1.Hash {
			img, err := assemble(specs[0], arm, []byte(bin), labels, created)
			if err != nil {
				t.Fatal(err)
			}
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		if a, b, c := digest("one"), digest("one"), digest("two"); a != b || a == c {
			t.Errorf("digests %s %s %s: want the first two equal and the third different", a, b, c)
		}
	})
}

func TestPlainHTTPGoesOnlyToTheLoopback(t *testing.T) {
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	rt := loopbackOnlyHTTP{next: next}
	for _, tc := range []struct {
		url  string
		sent bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"http://registry.localhost/v2/", true},
		{"https://registry.example.net/v2/", true},
		{"https://10.1.2.3/v2/", true},
		{"http://10.1.2.3:5000/v2/", false},
		{"http://192.168.1.5/v2/", false},
		{"http://registry.example.net/v2/", false},
		{"http://127.0.0.1.example.net/v2/", false},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if sent := err == nil; sent != tc.sent {
			t.Errorf("%s: sent %v (%v), want %v", tc.url, sent, err, tc.sent)
		}
		if err != nil && !errors.Is(err, errPlainHTTP) {
			t.Errorf("%s: %v, want errPlainHTTP", tc.url, err)
		}
	}
}

func noEnv(string) string { return "" }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeSource is a module with a cmd/verifier and a cmd/tcctl that print
// their main.version: go build of it takes a second.
func fakeSource(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.net/fake\n\ngo 1.26\n",
		"cmd/verifier/main.go": `package main

var version = "dev"

func main() { println("verifier", version) }
`,
		"cmd/tcctl/main.go": `package main

var version = "dev"

func main() { println("tcctl", version) }
`,
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runBinary extracts usr/local/bin/<name> of img and runs it.
func runBinary(t *testing.T, img v1.Image, binName string) string {
	t.Helper()
	_, data := layerFiles(t, img)
	bin := filepath.Join(t.TempDir(), binName)
	if err := os.WriteFile(bin, data["usr/local/bin/"+binName], 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin).CombinedOutput()
	if err != nil {
		t.Fatalf("run %s from the image: %v\n%s", binName, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestTheImagesArePushedToARegistryAndTheirBinariesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary it built")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	src := fakeSource(t)
	var stdout, stderr bytes.Buffer
	err := build(t.Context(), []string{"--registry", host + "/tc", "--version", "v1.2.3", "--source", src,
		"--revision", "0123abc", "verifier", "tcctl"}, &stdout, &stderr, noEnv)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], host+"/tc/verifier:1.2.3@sha256:") || !strings.HasPrefix(lines[1], host+"/tc/tcctl:1.2.3@sha256:") {
		t.Fatalf("printed %q, want the two references with their digests", lines)
	}
	for i, bin := range []string{"verifier", "tcctl"} {
		ref, err := name.ParseReference(host + "/tc/" + bin + ":1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if d, _ := img.Digest(); !strings.HasSuffix(lines[i], "@"+d.String()) {
			t.Errorf("pulled %s with digest %s, printed %s", ref, d, lines[i])
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != nonroot || cf.Config.Labels["org.opencontainers.image.revision"] != "0123abc" {
			t.Errorf("%s: user %q labels %v", bin, cf.Config.User, cf.Config.Labels)
		}
		if got := runBinary(t, img, bin); got != bin+" v1.2.3" {
			t.Errorf("%s from the image prints %q, want %q", bin, got, bin+" v1.2.3")
		}
	}

	t.Run("several platforms are pushed as one index", func(t *testing.T) {
		stdout.Reset()
		err := build(t.Context(), []string{"--registry", host + "/tc", "--tag", "multi", "--source", src,
			"--platform", "linux/amd64,linux/arm64", "tcctl"}, &stdout, &stderr, noEnv)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, stderr.String())
		}
		ref, _ := name.ParseReference(host + "/tc/tcctl:multi")
		idx, err := remote.Index(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range m.Manifests {
			got = append(got, d.Platform.String())
		}
		if strings.Join(got, " ") != "linux/amd64 linux/arm64" {
			t.Errorf("index platforms %v", got)
		}
	})

	t.Run("a tarball holds the images docker load reads", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "images.tar")
		stdout.Reset()
		if err := build(t.Context(), []string{"--registry", "registry.example.net/tc", "--version", "v2.0.0", "--source", src,
			"--tarball", file, "verifier"}, &stdout, &stderr, noEnv); err != nil {
			t.Fatalf("build: %v\n%s", err, stderr.String())
		}
		tag, _ := name.NewTag("registry.example.net/tc/verifier:2.0.0")
		img, err := tarball.ImageFromPath(file, &tag)
		if err != nil {
			t.Fatalf("read the tarball: %v", err)
		}
		if got := runBinary(t, img, "verifier"); got != "verifier v2.0.0" {
			t.Errorf("verifier from the tarball prints %q", got)
		}
	})

	t.Run("a build failure names the source and go's output", func(t *testing.T) {
		err := build(t.Context(), []string{"--registry", host + "/tc", "--source", src, "trust-agent"}, &stdout, &stderr, noEnv)
		if err == nil || !strings.Contains(err.Error(), "go build for linux/amd64 in "+src) || !strings.Contains(err.Error(), "cmd/trust-agent") {
			t.Errorf("error %v, want the failed go build with its output", err)
		}
	})

	t.Run("a registry that refuses the push is named", func(t *testing.T) {
		refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				w.WriteHeader(http.StatusOK)
				return
			}
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no push"}]}`, http.StatusForbidden)
		}))
		t.Cleanup(refusing.Close)
		rhost := strings.TrimPrefix(refusing.URL, "http://")
		err := build(t.Context(), []string{"--registry", rhost + "/tc", "--source", src, "tcctl"}, &stdout, &stderr, noEnv)
		if err == nil || !strings.Contains(err.Error(), "push "+rhost+"/tc/tcctl:dev") {
			t.Errorf("error %v, want the refused push named", err)
		}
	})
}

// TestEachBinaryIsBuiltWithItsDockerfilesCompilerFlags keeps the images this
// tool builds and the Dockerfiles' builds the same binaries: the trust agent
// without inlining, the others with the compiler's defaults.
func TestEachBinaryIsBuiltWithItsDockerfilesCompilerFlags(t *testing.T) {
	for _, s := range specs {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "docker", s.name+".Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		var gcflags string
		for f := range strings.FieldsSeq(string(b)) {
			if v, ok := strings.CutPrefix(f, "-gcflags="); ok {
				gcflags = v
			}
		}
		if gcflags != s.gcflags {
			t.Errorf("%s: the Dockerfile builds with -gcflags %q, this tool with %q", s.name, gcflags, s.gcflags)
		}
	}
	if specs[1].name != "trust-agent" || specs[1].gcflags != "all=-l" {
		t.Errorf("the trust agent is built with -gcflags %q, want all=-l (its footprint, docs/performance.md)", specs[1].gcflags)
	}
}
