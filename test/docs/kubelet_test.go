package docs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"trustedcompute.io/tc/internal/graceful"
)

// kubelet plays, for the install guide's test, the parts of a cluster that
// envtest does not run: the StatefulSet controller and the kubelet of the
// node its pods land on. For every StatefulSet it creates the pods and
// their PersistentVolumeClaims as the controller does, runs each pod's
// container as a process of the product binary its image names (with the
// pod's args, its env resolved from values, Secrets and fields, its volumes
// as directories and its container ports on free loopback ports), reports
// the pod Running and Ready once its readiness probe passes
// (container.isReady), and reports the StatefulSet's status. Its HTTPS endpoint,
// which the Node objects name, serves what the API server proxies to a
// kubelet: a container's log (`kubectl logs`) and SPDY port forwarding
// (`kubectl port-forward`). Deployments and DaemonSets get no pods.
type kubelet struct {
	t        *testing.T
	cs       kubernetes.Interface
	node     string            // the Node its pods run on
	binaries map[string]string // image name (last path element, no tag) -> binary
	dir      string
	addr     *net.TCPAddr // its HTTPS endpoint

	mu         sync.Mutex
	containers map[string]*container // namespace/pod/container
}

// container is a running container: a process with its log and ports.
type container struct {
	log   string
	ports map[int32]string // container port -> host address
	ready string           // address of the readiness probe's port
	tls   bool             // the probe is an HTTPS GET
}

// isReady is the readiness probe: the port accepts connections, and for an
// HTTPS probe a TLS server answers on it (it presents its certificate; the
// test cannot know the verifier's root before the guide pins it, so a
// certificate that does not verify is an answer too, and nothing is sent).
func (c *container) isReady() bool {
	if !c.tls {
		return serves(c.ready)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost"}}
	conn, err := d.DialContext(context.Background(), "tcp", c.ready)
	if err == nil {
		_ = conn.Close()
		return true
	}
	var unverified *tls.CertificateVerificationError
	return errors.As(err, &unverified)
}

// serve starts the kubelet's HTTPS endpoint and its controller loop until
// the test ends.
func (k *kubelet) serve(cert tls.Certificate) {
	t := k.t
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = l.Addr().(*net.TCPAddr)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.logs)
	mux.HandleFunc("POST /portForward/{ns}/{pod}", k.portForward)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := k.reconcile(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("kubelet: %v", err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = srv.Close() })
}

// addNode registers a Node served by this kubelet, Ready, with the given
// SMBIOS system UUID.
func (k *kubelet) addNode(ctx context.Context, name, systemUUID string) error {
	n, err := k.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	n.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.addr.Port)}},
		NodeInfo:        corev1.NodeSystemInfo{SystemUUID: systemUUID, OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.37.2"},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if _, err := k.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	return nil
}

// reconcile brings every StatefulSet's pods into being and reports them.
func (k *kubelet) reconcile(ctx context.Context) error {
	sets, err := k.cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list statefulsets: %w", err)
	}
	for i := range sets.Items {
		if err := k.reconcileSet(ctx, &sets.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

func (k *kubelet) reconcileSet(ctx context.Context, set *appsv1.StatefulSet) error {
	replicas := int32(1)
	if set.Spec.Replicas != nil {
		replicas = *set.Spec.Replicas
	}
	ready := int32(0)
	for i := range replicas {
		ok, err := k.reconcilePod(ctx, set, i)
		if err != nil {
			return err
		}
		if ok {
			ready++
		}
	}
	want := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation, Replicas: replicas, ReadyReplicas: ready,
		CurrentReplicas: replicas, UpdatedReplicas: replicas, AvailableReplicas: ready,
		CurrentRevision: set.Name + "-1", UpdateRevision: set.Name + "-1",
	}
	if set.Status.ObservedGeneration == want.ObservedGeneration && set.Status.ReadyReplicas == ready {
		return nil
	}
	set.Status = want
	if _, err := k.cs.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("statefulset %s status: %w", set.Name, err)
	}
	return nil
}

// reconcilePod creates pod i of the set with its claims and starts its
// containers; it reports whether the pod is Ready.
func (k *kubelet) reconcilePod(ctx context.Context, set *appsv1.StatefulSet, i int32) (bool, error) {
	name := set.Name + "-" + strconv.Itoa(int(i))
	pod, err := k.cs.CoreV1().Pods(set.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if pod, err = k.createPod(ctx, set, name, i); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("get pod %s: %w", name, err)
	}
	if podReady(pod) {
		return true, nil
	}
	for _, c := range pod.Spec.Containers {
		if k.running(pod, c.Name) == nil {
			if err := k.start(ctx, pod, c); err != nil {
				return false, fmt.Errorf("pod %s container %s: %w", name, c.Name, err)
			}
		}
		if !k.running(pod, c.Name).isReady() {
			return false, nil
		}
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "127.0.0.1", PodIP: "127.0.0.1", StartTime: &now}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: "process://" + c.Name,
			Ready: true, Started: ptr(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := k.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("pod %s status: %w", name, err)
	}
	return true, nil
}

func (k *kubelet) createPod(ctx context.Context, set *appsv1.StatefulSet, name string, i int32) (*corev1.Pod, error) {
	pod := &corev1.Pod{ObjectMeta: *set.Spec.Template.ObjectMeta.DeepCopy(), Spec: *set.Spec.Template.Spec.DeepCopy()}
	pod.Name, pod.Namespace = name, set.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(int(i))
	pod.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "StatefulSet", Name: set.Name, UID: set.UID, Controller: ptr(true),
	}}
	pod.Spec.NodeName, pod.Spec.Hostname, pod.Spec.Subdomain = k.node, name, set.Spec.ServiceName
	for _, claim := range set.Spec.VolumeClaimTemplates {
		pvc := claim.DeepCopy()
		pvc.Name, pvc.Namespace, pvc.ResourceVersion = claim.Name+"-"+name, set.Namespace, ""
		if _, err := k.cs.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create claim %s: %w", pvc.Name, err)
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name},
		}})
	}
	created, err := k.cs.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s: %w", name, err)
	}
	return created, nil
}

func podReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

func (k *kubelet) running(pod *corev1.Pod, name string) *container {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.containers[pod.Namespace+"/"+pod.Name+"/"+name]
}

// start runs container c of pod as a process of the binary its image names.
func (k *kubelet) start(ctx context.Context, pod *corev1.Pod, c corev1.Container) error {
	image := path.Base(c.Image)
	image, _, _ = strings.Cut(image, ":")
	bin, ok := k.binaries[image]
	if !ok {
		return fmt.Errorf("no binary for image %s", c.Image)
	}
	root := filepath.Join(k.dir, pod.Namespace, pod.Name)
	// Volumes become directories; a mount path in a value becomes its
	// directory.
	var mounts []string
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, "volumes", m.Name)
		if err := k.volume(ctx, pod, m.Name, dir); err != nil {
			return err
		}
		mounts = append(mounts, m.MountPath, filepath.Join(dir, m.SubPath))
	}
	paths := strings.NewReplacer(mounts...)
	ct := &container{log: filepath.Join(root, c.Name+".log"), ports: map[int32]string{}}
	for _, p := range c.Ports {
		ct.ports[p.ContainerPort] = "127.0.0.1:" + freePort(k.t)
		if c.ReadinessProbe != nil && probePort(c.ReadinessProbe) == p.Name {
			ct.ready = ct.ports[p.ContainerPort]
			ct.tls = c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Scheme == corev1.URISchemeHTTPS
		}
	}
	env := []string{"HOME=" + root, "PATH=" + os.Getenv("PATH")}
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/tmp" {
			env = append(env, "TMPDIR="+filepath.Join(root, "volumes", m.Name))
		}
	}
	for _, e := range c.Env {
		v, err := k.envValue(ctx, pod, e)
		if err != nil {
			return fmt.Errorf("env %s: %w", e.Name, err)
		}
		// A listen address on a container port: its host port.
		if port, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(v, "0.0.0.0"), ":")); err == nil && strings.Contains(v, ":") {
			if addr, ok := ct.ports[int32(port)]; ok {
				v = addr
			}
		}
		env = append(env, e.Name+"="+paths.Replace(v))
	}
	logf, err := os.Create(ct.log)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, append(c.Command[min(1, len(c.Command)):], c.Args...)...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, root, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	k.t.Cleanup(func() { graceful.Stop(cmd.Process, exited, 10*time.Second) })
	k.mu.Lock()
	k.containers[pod.Namespace+"/"+pod.Name+"/"+c.Name] = ct
	k.mu.Unlock()
	return nil
}

func probePort(p *corev1.Probe) string {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port.String()
	case p.TCPSocket != nil:
		return p.TCPSocket.Port.String()
	}
	return ""
}

// volume materialises a pod's volume as a directory.
func (k *kubelet) volume(ctx context.Context, pod *corev1.Pod, name, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		return fmt.Errorf("volume %s is mounted but not declared", name)
	}
	data := map[string][]byte{}
	var items []corev1.KeyToPath
	switch v := pod.Spec.Volumes[i]; {
	case v.Secret != nil:
		s, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		data, items = s.Data, v.Secret.Items
	case v.ConfigMap != nil:
		cm, err := k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		for key, val := range cm.Data {
			data[key] = []byte(val)
		}
		items = v.ConfigMap.Items
	}
	if items == nil {
		for key := range data {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("volume %s has no key %s", name, it.Key)
		}
		if err := os.WriteFile(filepath.Join(dir, it.Path), val, 0o400); err != nil {
			return err
		}
	}
	return nil
}

func (k *kubelet) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	switch from := e.ValueFrom; {
	case from == nil:
		return e.Value, nil
	case from.SecretKeyRef != nil:
		s, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretKeyRef.Name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return string(s.Data[from.SecretKeyRef.Key]), nil
	case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.name":
		return pod.Name, nil
	case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.namespace":
		return pod.Namespace, nil
	}
	return "", errors.New("this kubelet resolves values, secretKeyRef and metadata.name/namespace only")
}

// logs serves a container's log, as the API server asks a kubelet for it.
func (k *kubelet) logs(w http.ResponseWriter, r *http.Request) {
	ct := k.lookup(r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
	if ct == nil {
		http.Error(w, "no such container", http.StatusNotFound)
		return
	}
	f, err := os.Open(ct.log)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = f.Close() }()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.Copy(w, f)
}

func (k *kubelet) lookup(ns, pod, name string) *container {
	k.mu.Lock()
	defer k.mu.Unlock()
	if name != "" {
		return k.containers[ns+"/"+pod+"/"+name]
	}
	for key, c := range k.containers {
		if strings.HasPrefix(key, ns+"/"+pod+"/") {
			return c
		}
	}
	return nil
}

// portForward speaks the kubelet's SPDY port-forward protocol
// (portforward.k8s.io): each request is an error stream and a data stream
// with the same requestID and a port header; the data stream is joined to
// a connection to that container port.
func (k *kubelet) portForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("pod")
	if _, err := httpstream.Handshake(r, w, []string{"portforward.k8s.io"}); err != nil {
		return // Handshake wrote the response
	}
	var (
		mu        sync.Mutex
		errStream = map[string]httpstream.Stream{}
	)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		h := s.Headers()
		id := h.Get(corev1.PortForwardRequestIDHeader)
		if h.Get(corev1.StreamType) == corev1.StreamTypeError {
			mu.Lock()
			errStream[id] = s
			mu.Unlock()
			return nil
		}
		go func() {
			<-replySent
			err := k.forward(ns, name, h.Get(corev1.PortHeader), s)
			mu.Lock()
			es := errStream[id]
			delete(errStream, id)
			mu.Unlock()
			if es != nil {
				if err != nil {
					_, _ = fmt.Fprint(es, err.Error())
				}
				_ = es.Close()
			}
		}()
		return nil
	})
	if conn == nil {
		return
	}
	defer func() { _ = conn.Close() }()
	conn.SetIdleTimeout(10 * time.Minute)
	<-conn.CloseChan()
}

func (k *kubelet) forward(ns, pod, port string, s httpstream.Stream) error {
	defer func() { _ = s.Close() }()
	p, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return fmt.Errorf("port %q: %w", port, err)
	}
	ct := k.lookup(ns, pod, "")
	if ct == nil || ct.ports[int32(p)] == "" {
		return fmt.Errorf("pod %s/%s has no container port %d", ns, pod, p)
	}
	c, err := net.Dial("tcp", ct.ports[int32(p)])
	if err != nil {
		return fmt.Errorf("dial port %d: %w", p, err)
	}
	defer func() { _ = c.Close() }()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(s, c); close(done) }()
	_, _ = io.Copy(c, s)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
	return nil
}

func ptr[T any](v T) *T { return &v }
