package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeconfigFile is the administrator's kubeconfig of the sandbox's own
// kube-apiserver, in its data dir.
const KubeconfigFile = "kubeconfig"

// controlPlane is the kube-apiserver and etcd the sandbox runs (through
// controller-runtime's envtest, which starts the two binaries and nothing
// else: no kubelet, no scheduler).
type controlPlane struct {
	env *envtest.Environment
}

// HasKubeBinaries says whether dir holds kube-apiserver and etcd that this
// process may run.
func HasKubeBinaries(dir string) error {
	var errs []error
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := unix.Access(filepath.Join(dir, name), unix.X_OK); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, name), err))
		}
	}
	return errors.Join(errs...)
}

// FindKubeAssets is the directory of kube-apiserver and etcd:
// $KUBEBUILDER_ASSETS when set, else a build of hack/kube-tools.sh in its
// cache ($TC_CACHE_DIR, else $XDG_CACHE_HOME/trusted-compute, else
// ~/.cache/trusted-compute, then kube-tools/<version key>), the newest
// first; "" when there is none.
func FindKubeAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	cache := os.Getenv("TC_CACHE_DIR")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(base, "trusted-compute")
	}
	builds, _ := filepath.Glob(filepath.Join(cache, "kube-tools", "*", "kube-apiserver"))
	newest, newestAt := "", time.Time{}
	for _, b := range builds {
		dir := filepath.Dir(b)
		fi, err := os.Stat(b) //nolint:gosec // G703: a path of the kube-tools cache that the glob found
		if err == nil && HasKubeBinaries(dir) == nil && fi.ModTime().After(newestAt) {
			newest, newestAt = dir, fi.ModTime()
		}
	}
	return newest
}

// startControlPlane starts kube-apiserver and etcd from Options.KubeAssets,
// authorizing and admitting as a real cluster does, and writes a kubeconfig
// of a system:masters user into the data dir: tcctl's node commands and
// kubectl use it. The manager acts on it as on any real cluster.
func (f *Fleet) startControlPlane() error {
	if err := HasKubeBinaries(f.opts.KubeAssets); err != nil {
		return fmt.Errorf("kube-apiserver and etcd: %w", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    f.opts.KubeAssets,
		ControlPlaneStartTimeout: 2 * time.Minute, // a loaded machine is slow
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("authorization-mode", "Node,RBAC").
		Set("enable-admission-plugins", "NodeRestriction")
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	f.control = &controlPlane{env: env}
	admin, err := env.AddUser(envtest.User{Name: "sandbox-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(f.Kubeconfig(), kc, 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	f.opts.KubeConfig = admin.Config()
	f.opts.KubeConfig.UserAgent = "trustedcompute-sandbox"
	return nil
}

// Kubeconfig is the path of the kubeconfig of the sandbox's own
// kube-apiserver; empty when it runs none.
func (f *Fleet) Kubeconfig() string {
	if f.control == nil {
		return ""
	}
	return filepath.Join(f.dir, KubeconfigFile)
}

func (c *controlPlane) stop(logger *slog.Logger) {
	if err := c.env.Stop(); err != nil {
		logger.Warn("stop kube-apiserver and etcd", slog.Any(keyError, err))
	}
}
