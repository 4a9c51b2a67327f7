package fleet

import (
	"fmt"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"trustedcompute.io/tc/internal/cluster"
)

// localAPI is the sandbox's Kubernetes API when no cluster is given: an
// in-memory object store (client-go's object tracker) holding the sandbox's
// Node objects, the onboard requests' ConfigMap and the Events. The
// product's Kubernetes adapter (internal/cluster, manager.KubeNodes) acts on
// it through the same clientset interface as on a real API server; only the
// server is swapped.
type localAPI struct {
	*fake.Clientset
}

// newLocalAPI returns an empty local API. It names the objects created with
// only a generateName (the adapter's Events), as an API server does.
func newLocalAPI() localAPI {
	cs := fake.NewSimpleClientset()
	var seq atomic.Uint64
	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, ok := a.(k8stesting.CreateAction)
		if !ok {
			return false, nil, nil
		}
		if m, ok := obj.GetObject().(metav1.Object); ok && m.GetName() == "" && m.GetGenerateName() != "" {
			m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), seq.Add(1)))
		}
		return false, nil, nil // the object tracker stores it
	})
	return localAPI{Clientset: cs}
}

// forget drops the record of the calls made so far: the clientset keeps
// every call for tests to read, which a long run does not need.
func (l localAPI) forget() { l.ClearActions() }

// sandboxNode is the Node object of a sandbox node: enabled for Trusted
// Compute, with its host id and system UUID, as a kubelet and an operator
// would have made it.
func sandboxNode(name, hostID, systemUUID string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{cluster.LabelEnabled: "true"},
			Annotations: map[string]string{cluster.AnnotationHostID: hostID},
		},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{SystemUUID: systemUUID}},
	}
}
