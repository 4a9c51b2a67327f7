// Package clustertest runs a real Kubernetes control plane (kube-apiserver
// and etcd, through controller-runtime's envtest) for tests, once per test
// binary, and builds the objects tests create in it.
//
// The binaries come from KUBEBUILDER_ASSETS, or else from hack/kube-tools.sh,
// which builds them from their Go modules into a cache and prints the
// directory (found by walking up from the test's directory). envtest never
// downloads anything. When neither gives the binaries the tests that need
// them skip, unless the comma-separated env TC_TEST_REQUIRE contains "kube":
// then they fail.
//
// A test binary that uses Start must run its tests through Run:
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }
//
// so that the control plane is stopped when the tests end.
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// RequireEnv names the env variable that turns a missing control plane into
// a failure when it contains RequireName.
const (
	RequireEnv  = tpmtest.RequireEnv
	RequireName = "kube"
)

// assetsEnv is envtest's variable for the directory holding the binaries.
const assetsEnv = "KUBEBUILDER_ASSETS"

var (
	mu       sync.Mutex
	inRun    bool
	started  bool
	env      *envtest.Environment
	startErr error
	skipWhy  string
)

// Run runs the tests of m and then stops the control plane if a test started
// it. It returns the exit code for os.Exit.
func Run(m *testing.M) int {
	mu.Lock()
	inRun = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "clustertest: stop control plane: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		env = nil
	}
	return code
}

// Start returns an admin (system:masters) config for the control plane,
// starting it on the first call. It skips or fails t when the binaries are
// missing (see the package comment).
func Start(t testing.TB) *rest.Config {
	t.Helper()
	e := start(t)
	return rest.CopyConfig(e.Config)
}

// Clientset is kubernetes.NewForConfig(Start(t)).
func Clientset(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	return NewClientset(t, Start(t))
}

// NewClientset is kubernetes.NewForConfig that fails t on error.
func NewClientset(t testing.TB, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}

// User returns a config that authenticates as the named user, member of
// groups, with no permissions but those RBAC grants it: the way to test that
// a role is enough. The API server runs the Node authorizer and the
// NodeRestriction admission plugin, so User(t, "system:node:n1",
// "system:nodes") acts as the kubelet of Node n1 would.
func User(t testing.TB, name string, groups ...string) *rest.Config {
	t.Helper()
	e := start(t)
	u, err := e.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	return u.Config()
}

// AsNode is a client with the Node's own identity, as its kubelet (and so
// root on the node) has it: user system:node:<name> in group system:nodes,
// under the Node authorizer and the NodeRestriction admission plugin.
func AsNode(t testing.TB, name string) *kubernetes.Clientset {
	t.Helper()
	return NewClientset(t, User(t, "system:node:"+name, "system:nodes"))
}

// PatchNode sends body as a strategic-merge patch of the Node.
func PatchNode(cs kubernetes.Interface, name string, body map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Nodes().Patch(context.Background(), name, types.StrategicMergePatchType, b, metav1.PatchOptions{})
	return err
}

// Elected reports whether a controller-runtime manager leads now: it has
// won the leader election (or runs without one).
func Elected(cm interface{ Elected() <-chan struct{} }) bool {
	select {
	case <-cm.Elected():
		return true
	default:
		return false
	}
}

func start(t testing.TB) *envtest.Environment {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inRun {
		t.Fatal("clustertest: call clustertest.Run from TestMain, so that the control plane is stopped: " +
			"func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }")
	}
	if !started {
		started = true
		env, skipWhy, startErr = boot()
	}
	switch {
	case skipWhy != "" && Required():
		t.Fatalf("kube-apiserver is required (%s=%q) but not available: %s", RequireEnv, os.Getenv(RequireEnv), skipWhy)
	case skipWhy != "":
		t.Skipf("no kube-apiserver (set %s=%s to make this a failure): %s", RequireEnv, RequireName, skipWhy)
	case startErr != nil:
		t.Fatalf("start control plane: %v", startErr)
	}
	return env
}

// boot finds the binaries and starts the control plane. skip is set when
// the binaries cannot be had; err when they are there but do not start.
func boot() (e *envtest.Environment, skip string, err error) {
	dir, skip := assets()
	if skip != "" {
		return nil, skip, nil
	}
	// envtest logs through controller-runtime's logr; bridge it to slog,
	// warnings and errors only.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	e = &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		DownloadBinaryAssets:     false,
		ControlPlaneStartTimeout: 90 * time.Second, // two shared cores can be slow
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Authorize and admit as a real cluster does, so that a test acting
	// with a node's own identity (User(t, "system:node:<name>",
	// "system:nodes")) gets what a kubelet gets, and no more.
	e.ControlPlane.GetAPIServer().Configure().
		Set("authorization-mode", "Node,RBAC").
		Set("enable-admission-plugins", "NodeRestriction")
	t0 := time.Now()
	if _, err := e.Start(); err != nil {
		_ = e.Stop()
		return nil, "", err
	}
	fmt.Fprintf(os.Stderr, "clustertest: control plane (%s) up in %v\n", dir, time.Since(t0).Round(time.Millisecond))
	return e, "", nil
}

// assets returns the directory holding kube-apiserver and etcd, or why
// there is none.
func assets() (dir, skip string) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		if err := hasBinaries(dir); err != nil {
			return "", fmt.Sprintf("%s=%s: %v", assetsEnv, dir, err)
		}
		return dir, ""
	}
	script, err := findScript()
	if err != nil {
		return "", fmt.Sprintf("%s is not set and %v", assetsEnv, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Sprintf("%s is not set and %s failed: %v: %s", assetsEnv, script, err, tail(stderr.String(), 800))
	}
	dir = strings.TrimSpace(lastLine(stdout.String()))
	if err := hasBinaries(dir); err != nil {
		return "", fmt.Sprintf("%s printed %q: %v", script, dir, err)
	}
	return dir, ""
}

func hasBinaries(dir string) error {
	var errs []error
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s is not an executable file", filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

// findScript walks up from the working directory (the test's package) to
// the repository root holding hack/kube-tools.sh.
func findScript() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "hack", "kube-tools.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no hack/kube-tools.sh above %s", wd)
		}
	}
}

// Required tells whether RequireEnv makes a missing control plane a failure.
func Required() bool {
	return tpmtest.Required(RequireName)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
