package docs_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"trustedcompute.io/tc/internal/graceful"
)

// kubelet plays, for the install guide's test, the parts of a cluster that
// envtest does not run: the StatefulSet, Deployment (with ReplicaSet) and
// DaemonSet controllers, the scheduler for Deployments' pods, cluster DNS
// for Services, and the kubelet of the nodes the pods land on.
//
// For every StatefulSet it creates the pods (on setNode) and their
// PersistentVolumeClaims as the controller does; for every Deployment, its
// replicas, bound to the first node whose labels match the admitted pod's
// nodeSelector; for every DaemonSet, a pod on each of its nodes whose
// labels match the pod's nodeSelector. It runs
// each pod's container as a process of the image the container names,
// pulled from the reader's registry (images) and unpacked: the image's
// entrypoint and Cmd, the container's command and args, its env resolved
// from values, Secrets and fields, its volumes as directories (a hostPath
// below the node's root directory, a TPM device as the node's swtpm), a
// Service's cluster DNS name as the address of the pod port behind it, and
// its container ports on free loopback ports; the files of its ConfigMap
// volumes are mapped the same way (Service names, mount paths, quoted
// listen addresses). A pod that does not opt out of its ServiceAccount's
// token gets one from the TokenRequest API in a kubeconfig
// (serviceAccountKubeconfig), so the API server's RBAC applies to it. An
// image from another registry than the guide's is not pulled: its pod
// stays Pending, as on a node that cannot reach that registry. It reports a pod Running and
// Ready once its readiness probe passes (container.isReady), and the
// StatefulSet's and DaemonSet's status. Its HTTPS endpoint, which the Node
// objects name, serves what the API server proxies to a kubelet: a
// container's log (`kubectl logs`) and SPDY port forwarding
// (`kubectl port-forward`). Old pods of a changed template are not
// replaced.
type kubelet struct {
	t       *testing.T
	cs      kubernetes.Interface
	images  *images
	setNode string           // the Node StatefulSet pods run on
	nodes   map[string]*node // the Nodes it serves
	dir     string
	addr    *net.TCPAddr // its HTTPS endpoint
	api     *rest.Config // the API server, for pods' kubeconfigs

	mu         sync.Mutex
	containers map[string]*container // namespace/pod/container
	failed     map[string]bool       // pods whose start failed: namespace/pod
	// failures says why a pod does not start, for the block waiting on it.
	failures chan string
}

// node is a Node the kubelet serves: the directory that is its root file
// system (hostPath volumes) and its devices.
type node struct {
	root string
	// devices maps a device path to what a container is given instead: a
	// TPM (/dev/tpmrm0) is a swtpm socket, and the agent's TC_TPM
	// device:<path> becomes swtpm:unix:<socket>.
	devices map[string]string
}

// container is a running container: a process with its log and ports.
type container struct {
	log   string
	ports map[int32]string // container port -> host address
	ready string           // address of the readiness probe's port
	tls   bool             // the probe is an HTTPS GET
	probe *exec.Cmd        // an exec probe: run a copy
}

// isReady is the readiness probe. An exec probe's command exits 0. For a
// port, the port accepts connections, and for an HTTPS probe a TLS server
// answers on it (it presents its certificate; the test cannot know the
// verifier's root before the guide pins it, so a certificate that does not
// verify is an answer too, and nothing is sent).
func (c *container) isReady() bool {
	if c.probe != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.probe.Path, c.probe.Args[1:]...)
		cmd.Env, cmd.Dir = c.probe.Env, c.probe.Dir
		return cmd.Run() == nil
	}
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
func (k *kubelet) addNode(ctx context.Context, name, systemUUID string, n *node) error {
	obj, err := k.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	obj.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.addr.Port)}},
		NodeInfo:        corev1.NodeSystemInfo{SystemUUID: systemUUID, OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.37.2"},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if _, err := k.cs.CoreV1().Nodes().UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	k.mu.Lock()
	k.nodes[name] = n
	k.mu.Unlock()
	return nil
}

// reconcile brings every StatefulSet's, Deployment's and DaemonSet's pods
// into being and reports them.
func (k *kubelet) reconcile(ctx context.Context) error {
	sets, err := k.cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list statefulsets: %w", err)
	}
	deploys, err := k.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list deployments: %w", err)
	}
	daemons, err := k.cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list daemonsets: %w", err)
	}
	nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var errs []error
	for i := range sets.Items {
		errs = append(errs, k.reconcileSet(ctx, &sets.Items[i]))
	}
	for i := range deploys.Items {
		errs = append(errs, k.reconcileDeployment(ctx, &deploys.Items[i]))
	}
	for i := range daemons.Items {
		errs = append(errs, k.reconcileDaemonSet(ctx, &daemons.Items[i], nodes.Items))
	}
	return errors.Join(errs...)
}

func (k *kubelet) reconcileSet(ctx context.Context, set *appsv1.StatefulSet) error {
	replicas, ready, err := k.reconcileReplicas(ctx, set.Namespace, set.Spec.Replicas, set.Name+"-", func(name string, i int32) (*corev1.Pod, error) {
		return k.createSetPod(ctx, set, name, i)
	})
	if err != nil {
		return err
	}
	want := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation, Replicas: replicas, ReadyReplicas: ready,
		CurrentReplicas: replicas, UpdatedReplicas: replicas, AvailableReplicas: ready,
		CurrentRevision: set.Name + "-1", UpdateRevision: set.Name + "-1",
	}
	same := set.Status.ObservedGeneration == want.ObservedGeneration && set.Status.ReadyReplicas == ready
	return updateStatus("statefulset", set.Name, same, func() error {
		set.Status = want
		_, err := k.cs.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
		return err
	})
}

// updateStatus writes a controller's status with update unless it is the
// same; a conflict is left to the next round.
func updateStatus(kind, name string, same bool, update func() error) error {
	if same {
		return nil
	}
	if err := update(); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("%s %s status: %w", kind, name, err)
	}
	return nil
}

// reconcileDaemonSet runs the set's pod on each node this kubelet serves
// whose labels match the pod's nodeSelector.
func (k *kubelet) reconcileDaemonSet(ctx context.Context, ds *appsv1.DaemonSet, nodes []corev1.Node) error {
	sel := labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector)
	var pods []wantedPod
	for _, n := range nodes {
		k.mu.Lock()
		_, served := k.nodes[n.Name]
		k.mu.Unlock()
		if !served || !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		name := ds.Name + "-" + n.Name
		pods = append(pods, wantedPod{name, func() (*corev1.Pod, error) { return k.createDaemonPod(ctx, ds, name, n.Name) }})
	}
	desired := int32(len(pods))
	ready, err := k.reconcilePods(ctx, ds.Namespace, pods)
	if err != nil {
		return err
	}
	want := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Generation, DesiredNumberScheduled: desired, CurrentNumberScheduled: desired,
		UpdatedNumberScheduled: desired, NumberReady: ready, NumberAvailable: ready, NumberUnavailable: desired - ready,
	}
	same := ds.Status.ObservedGeneration == want.ObservedGeneration && ds.Status.DesiredNumberScheduled == desired && ds.Status.NumberReady == ready
	return updateStatus("daemonset", ds.Name, same, func() error {
		ds.Status = want
		_, err := k.cs.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, ds, metav1.UpdateOptions{})
		return err
	})
}

// reconcileDeployment plays the Deployment and ReplicaSet controllers and
// the scheduler: the pods of the current template are named
// <deployment>-<template hash>-<i> and bound to the first node this kubelet
// serves whose labels match the pod's nodeSelector as admitted (a
// RuntimeClass's scheduling.nodeSelector merged in), else left Pending.
func (k *kubelet) reconcileDeployment(ctx context.Context, d *appsv1.Deployment) error {
	tmpl, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(tmpl)
	hash := hex.EncodeToString(sum[:5])
	replicas, ready, err := k.reconcileReplicas(ctx, d.Namespace, d.Spec.Replicas, d.Name+"-"+hash+"-", func(name string, _ int32) (*corev1.Pod, error) {
		return k.createDeploymentPod(ctx, d, name, hash)
	})
	if err != nil {
		return err
	}
	want := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas,
		ReadyReplicas: ready, AvailableReplicas: ready, UnavailableReplicas: replicas - ready,
	}
	same := d.Status.ObservedGeneration == want.ObservedGeneration && d.Status.Replicas == replicas && d.Status.ReadyReplicas == ready
	return updateStatus("deployment", d.Name, same, func() error {
		d.Status = want
		_, err := k.cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		return err
	})
}

func (k *kubelet) createDeploymentPod(ctx context.Context, d *appsv1.Deployment, name, hash string) (*corev1.Pod, error) {
	pod := newPod(&d.Spec.Template, d.Namespace, name, "", metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr(true),
	})
	pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	return k.createPod(ctx, pod)
}

// schedule binds pod to the first node this kubelet serves whose labels
// match the pod's nodeSelector; it reports false when none does yet.
func (k *kubelet) schedule(ctx context.Context, pod *corev1.Pod) (bool, error) {
	nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list nodes: %w", err)
	}
	sel := labels.SelectorFromSet(pod.Spec.NodeSelector)
	for _, n := range nodes.Items { // sorted by name
		k.mu.Lock()
		_, served := k.nodes[n.Name]
		k.mu.Unlock()
		if !served || !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		if err := k.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: n.Name},
		}, metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("bind pod %s to %s: %w", pod.Name, n.Name, err)
		}
		pod.Spec.NodeName = n.Name
		return true, nil
	}
	return false, nil
}

// reconcileReplicas reconciles the pods <prefix><i> of a set of replicas
// (1 when nil) and counts them and the Ready ones.
func (k *kubelet) reconcileReplicas(ctx context.Context, ns string, replicas *int32, prefix string, create func(name string, i int32) (*corev1.Pod, error)) (n, ready int32, err error) {
	n = 1
	if replicas != nil {
		n = *replicas
	}
	var pods []wantedPod
	for i := range n {
		name := prefix + strconv.Itoa(int(i))
		pods = append(pods, wantedPod{name, func() (*corev1.Pod, error) { return create(name, i) }})
	}
	ready, err = k.reconcilePods(ctx, ns, pods)
	return n, ready, err
}

// wantedPod is a pod a controller wants: its name and how to create it.
type wantedPod struct {
	name   string
	create func() (*corev1.Pod, error)
}

// reconcilePods reconciles each pod and counts the Ready ones.
func (k *kubelet) reconcilePods(ctx context.Context, ns string, pods []wantedPod) (int32, error) {
	ready := int32(0)
	for _, p := range pods {
		ok, err := k.reconcilePod(ctx, ns, p.name, p.create)
		if err != nil {
			return ready, err
		}
		if ok {
			ready++
		}
	}
	return ready, nil
}

// reconcilePod creates pod name with create when it does not exist and
// starts its containers; it reports whether the pod is Ready. A container
// that cannot start is logged once and its pod stays unready, as on a real
// node.
func (k *kubelet) reconcilePod(ctx context.Context, ns, name string, create func() (*corev1.Pod, error)) (bool, error) {
	pod, err := k.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if pod, err = create(); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("get pod %s: %w", name, err)
	}
	if podReady(pod) {
		return true, nil
	}
	k.mu.Lock()
	failed := k.failed[ns+"/"+name]
	k.mu.Unlock()
	if failed {
		return false, nil
	}
	if pod.Spec.NodeName == "" {
		if ok, err := k.schedule(ctx, pod); !ok || err != nil {
			return false, err
		}
	}
	for _, c := range pod.Spec.Containers {
		if k.running(pod, c.Name) == nil {
			if err := k.start(ctx, pod, c); errors.Is(err, errNotPushed) {
				// As a node without the image: the pod waits, which the
				// guide never waits for (Kata's installer, the example app).
				k.t.Logf("kubelet: pod %s/%s waits for its image: %v", ns, name, err)
				k.mu.Lock()
				k.failed[ns+"/"+name] = true
				k.mu.Unlock()
				return false, nil
			} else if err != nil {
				select {
				case k.failures <- fmt.Sprintf("pod %s/%s container %s does not start: %v", ns, name, c.Name, err):
				default:
				}
				k.mu.Lock()
				k.failed[ns+"/"+name] = true
				k.mu.Unlock()
				return false, nil
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

// newPod is a pod of a controller's template, on node.
func newPod(tmpl *corev1.PodTemplateSpec, ns, name, node string, owner metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Name, pod.Namespace, pod.Spec.NodeName = name, ns, node
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.OwnerReferences = []metav1.OwnerReference{owner}
	return pod
}

func (k *kubelet) createSetPod(ctx context.Context, set *appsv1.StatefulSet, name string, i int32) (*corev1.Pod, error) {
	pod := newPod(&set.Spec.Template, set.Namespace, name, k.setNode, metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "StatefulSet", Name: set.Name, UID: set.UID, Controller: ptr(true),
	})
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(int(i))
	pod.Spec.Hostname, pod.Spec.Subdomain = name, set.Spec.ServiceName
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
	return k.createPod(ctx, pod)
}

func (k *kubelet) createDaemonPod(ctx context.Context, ds *appsv1.DaemonSet, name, node string) (*corev1.Pod, error) {
	pod := newPod(&ds.Spec.Template, ds.Namespace, name, node, metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr(true),
	})
	return k.createPod(ctx, pod)
}

func (k *kubelet) createPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	created, err := k.cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s: %w", pod.Name, err)
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

// start runs container c of pod as a process of its image.
func (k *kubelet) start(ctx context.Context, pod *corev1.Pod, c corev1.Container) error {
	im, err := k.images.pull(ctx, c.Image)
	if err != nil {
		return err
	}
	k.mu.Lock()
	n := k.nodes[pod.Spec.NodeName]
	k.mu.Unlock()
	if n == nil {
		return fmt.Errorf("pod %s is on node %q, which this kubelet does not serve", pod.Name, pod.Spec.NodeName)
	}
	root := filepath.Join(k.dir, pod.Namespace, pod.Name)
	// What the container sees is mapped to what the test has: a mount
	// path to its volume's directory, a device to the node's stand-in, a
	// Service's DNS name to the address of the pod port behind it.
	var mounts []string
	for _, m := range c.VolumeMounts {
		src, err := k.volume(ctx, pod, n, m.Name, filepath.Join(root, "volumes", m.Name))
		if err != nil {
			return err
		}
		if dev, ok := n.devices[src]; ok {
			mounts = append(mounts, "device:"+m.MountPath, dev)
			continue
		}
		mounts = append(mounts, m.MountPath, filepath.Join(src, m.SubPath))
	}
	if prefix := hostRoot(pod, c); prefix != "" {
		mounts = append(mounts, prefix, n.root)
	}
	dns, err := k.serviceAddrs(ctx)
	if err != nil {
		return err
	}
	paths := strings.NewReplacer(append(mounts, dns...)...)
	ct := &container{log: filepath.Join(root, c.Name+".log"), ports: map[int32]string{}}
	var listen []string // a quoted listen address on a container port in a file: its host port
	for _, p := range c.Ports {
		ct.ports[p.ContainerPort] = "127.0.0.1:" + freePort(k.t)
		for _, a := range []string{":", "0.0.0.0:"} {
			listen = append(listen, fmt.Sprintf("%q", a+strconv.Itoa(int(p.ContainerPort))), strconv.Quote(ct.ports[p.ContainerPort]))
		}
		if c.ReadinessProbe != nil && probePort(c.ReadinessProbe) == p.Name {
			ct.ready = ct.ports[p.ContainerPort]
			ct.tls = c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Scheme == corev1.URISchemeHTTPS
		}
	}
	if err := rewriteConfigMaps(pod, c, root, strings.NewReplacer(append(listen, append(mounts, dns...)...)...)); err != nil {
		return err
	}
	env := []string{"HOME=" + root, "PATH=" + os.Getenv("PATH")}
	kubeconfig, err := k.serviceAccountKubeconfig(ctx, pod, root)
	if err != nil {
		return err
	}
	if kubeconfig != "" {
		env = append(env, "TC_KUBECONFIG="+kubeconfig)
	}
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
	program, args, err := im.command(c)
	if err != nil {
		return fmt.Errorf("image %s: %w", c.Image, err)
	}
	if p := c.ReadinessProbe; p != nil && p.Exec != nil && len(p.Exec.Command) > 0 {
		argv := p.Exec.Command
		ct.probe = exec.Command(im.file(argv[0]), replaceAll(paths, argv[1:])...)
		ct.probe.Env, ct.probe.Dir = env, root
	}
	logf, err := os.Create(ct.log)
	if err != nil {
		return err
	}
	cmd := exec.Command(program, replaceAll(paths, args)...)
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

// rewriteConfigMaps maps what the files of c's ConfigMap volumes name as
// the container's args and env are mapped (r): the product's files read
// Service names, mount paths and listen addresses from them.
func rewriteConfigMaps(pod *corev1.Pod, c corev1.Container, root string, r *strings.Replacer) error {
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || pod.Spec.Volumes[i].ConfigMap == nil {
			continue
		}
		dir := filepath.Join(root, "volumes", m.Name)
		files, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			p := filepath.Join(dir, f.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(r.Replace(string(b))), 0o400); err != nil {
				return err
			}
		}
	}
	return nil
}

// serviceAccountKubeconfig gives a pod the API access a kubelet gives it:
// unless the pod or its ServiceAccount opts out, a token for the pod's
// ServiceAccount from the TokenRequest API, bound to the pod, in a
// kubeconfig with the API server's CA, which it writes below root and
// returns ("" when the pod gets no token). A kubelet mounts the token
// where client-go's in-cluster config reads it, a path the test cannot
// map, so the attestation manager gets the kubeconfig as TC_KUBECONFIG.
func (k *kubelet) serviceAccountKubeconfig(ctx context.Context, pod *corev1.Pod, root string) (string, error) {
	if m := pod.Spec.AutomountServiceAccountToken; m != nil && !*m {
		return "", nil
	}
	name := pod.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	sa, err := k.cs.CoreV1().ServiceAccounts(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("service account %s: %w", name, err)
	}
	if m := sa.AutomountServiceAccountToken; pod.Spec.AutomountServiceAccountToken == nil && m != nil && !*m {
		return "", nil
	}
	tr, err := k.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr(int64(3600)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s: %w", name, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: k.api.Host, CertificateAuthorityData: k.api.CAData}
	kc.AuthInfos["pod"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "pod", Namespace: pod.Namespace}
	kc.CurrentContext = "pod"
	p := filepath.Join(root, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		return "", err
	}
	return p, nil
}

func replaceAll(r *strings.Replacer, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = r.Replace(s)
	}
	return out
}

// hostRoot is the directory under which the container mounts the node's
// host paths each at its own path (the trust agent's /host with
// /host/sys, /host/proc, ...), or "" when it does not. The test maps that
// directory to the node's root.
func hostRoot(pod *corev1.Pod, c corev1.Container) string {
	prefix := ""
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || pod.Spec.Volumes[i].HostPath == nil {
			continue
		}
		hp := pod.Spec.Volumes[i].HostPath.Path
		p, ok := strings.CutSuffix(m.MountPath, hp)
		if !ok || p == "" || (prefix != "" && p != prefix) {
			continue
		}
		prefix = p
	}
	return prefix
}

// serviceAddrs are replacer pairs from each Service's cluster DNS names and
// ports to the address of the pod port behind it, for the pods this kubelet
// runs.
func (k *kubelet) serviceAddrs(ctx context.Context) ([]string, error) {
	svcs, err := k.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []string
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		pods, err := k.cs.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
		if err != nil {
			return nil, fmt.Errorf("pods of service %s: %w", svc.Name, err)
		}
		for _, sp := range svc.Spec.Ports {
			for _, pod := range pods.Items {
				addr := k.podPort(&pod, sp.TargetPort.String(), sp.TargetPort.IntValue())
				if addr == "" {
					continue
				}
				for _, host := range []string{svc.Name + "." + svc.Namespace + ".svc.cluster.local", svc.Name + "." + svc.Namespace + ".svc"} {
					out = append(out, host+":"+strconv.Itoa(int(sp.Port)), addr)
				}
				break
			}
		}
	}
	return out, nil
}

// podPort is the host address of a running pod's container port, given by
// name or number.
func (k *kubelet) podPort(pod *corev1.Pod, portName string, number int) string {
	for _, c := range pod.Spec.Containers {
		ct := k.running(pod, c.Name)
		if ct == nil {
			continue
		}
		for _, p := range c.Ports {
			if p.Name == portName || int(p.ContainerPort) == number {
				return ct.ports[p.ContainerPort]
			}
		}
	}
	return ""
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

// volume materialises a pod's volume and returns where it is: for a
// hostPath, the path below the node's root (a device path as it is, for
// node.devices), else the directory dir.
func (k *kubelet) volume(ctx context.Context, pod *corev1.Pod, n *node, name, dir string) (string, error) {
	i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		return "", fmt.Errorf("volume %s is mounted but not declared", name)
	}
	v := pod.Spec.Volumes[i]
	if hp := v.HostPath; hp != nil {
		return hostPath(n, hp)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	data := map[string][]byte{}
	var items []corev1.KeyToPath
	switch {
	case v.Secret != nil:
		s, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("volume %s: %w", name, err)
		}
		data, items = s.Data, v.Secret.Items
	case v.ConfigMap != nil:
		cm, err := k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("volume %s: %w", name, err)
		}
		for key, val := range cm.Data {
			data[key] = []byte(val)
		}
		items = v.ConfigMap.Items
	}
	if items == nil {
		for _, key := range slices.Sorted(maps.Keys(data)) {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return "", fmt.Errorf("volume %s has no key %s", name, it.Key)
		}
		if err := os.WriteFile(filepath.Join(dir, it.Path), val, 0o400); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// hostPath is where a hostPath volume is on the node, checked against its
// type as a kubelet does.
func hostPath(n *node, hp *corev1.HostPathVolumeSource) (string, error) {
	if _, ok := n.devices[hp.Path]; ok {
		return hp.Path, nil
	}
	p := filepath.Join(n.root, hp.Path)
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, err := os.Stat(p)
	switch {
	case typ == corev1.HostPathDirectoryOrCreate && errors.Is(err, os.ErrNotExist):
		return p, os.MkdirAll(p, 0o755)
	case typ == corev1.HostPathUnset, typ == corev1.HostPathDirectoryOrCreate && err == nil && fi.IsDir():
		return p, nil
	case err != nil:
		return "", fmt.Errorf("hostPath %s (type %s) on the node: %w", hp.Path, typ, err)
	case typ == corev1.HostPathDirectory && fi.IsDir(), typ == corev1.HostPathFile && fi.Mode().IsRegular():
		return p, nil
	}
	return "", fmt.Errorf("hostPath %s on the node is not of type %s", hp.Path, typ)
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
	case from.FieldRef != nil && from.FieldRef.FieldPath == "spec.nodeName":
		return pod.Spec.NodeName, nil
	}
	return "", errors.New("this kubelet resolves values, secretKeyRef and metadata.name/namespace and spec.nodeName only")
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

// podLogs is the end of every container's log, for a failure message.
func (k *kubelet) podLogs() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for _, key := range slices.Sorted(maps.Keys(k.containers)) {
		log, _ := os.ReadFile(k.containers[key].log)
		fmt.Fprintf(&b, "%s:\n%s\n", key, log[max(0, len(log)-4096):])
	}
	return b.String()
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
