package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// shippedRole is the ClusterRole in rbac.yaml.
func shippedRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	b, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(b, &role); err != nil {
		t.Fatalf("rbac.yaml: %v", err)
	}
	if role.Kind != "ClusterRole" || len(role.Rules) == 0 {
		t.Fatalf("rbac.yaml holds %s with %d rules, want a ClusterRole", role.Kind, len(role.Rules))
	}
	return role
}

// grant is one verb on one resource of a role.
type grant struct{ group, resource, verb string }

func (g grant) String() string { return fmt.Sprintf("%s %s/%s", g.verb, g.group, g.resource) }

func grants(role rbacv1.ClusterRole) []grant {
	var out []grant
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, grant{g, res, v})
				}
			}
		}
	}
	return out
}

// bind creates a ClusterRole of the grants under a fresh name, binds a fresh
// user to it and nothing else, waits until the authorizer knows, and returns
// the user's client.
func bind(t *testing.T, admin kubernetes.Interface, gs []grant) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	name := uniqueName(t, "tc")
	role := rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, g := range gs {
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{g.group}, Resources: []string{g.resource}, Verbs: []string{g.verb}})
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create binding: %v", err)
	}
	// The RBAC authorizer reads roles and bindings from informers: wait
	// until it grants the user the first permission of the role.
	g := gs[0]
	res, sub, _ := strings.Cut(g.resource, "/")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{User: name, ResourceAttributes: &authzv1.ResourceAttributes{
				Group: g.group, Resource: res, Subresource: sub, Verb: g.verb, Namespace: "default",
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		if r.Status.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s still not granted %v", name, g)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return clustertest.NewClientset(t, clustertest.User(t, name))
}

// everything runs every operation of the package against a fresh node with a
// pod in a fresh namespace, and returns the first error.
func everything(t *testing.T, admin, user kubernetes.Interface) error {
	t.Helper()
	ctx := context.Background()
	node, ns := uniqueName(t, "n"), uniqueName(t, "ns")
	enabledNode(node).Create(t, admin)
	clustertest.Namespace(t, admin, ns)
	clustertest.Pod(ns, "plain").OnNode(node).Create(t, admin)

	nodes := newNodes(t, user)
	if _, err := nodes.EnabledNodes(ctx); err != nil {
		return err
	}
	if _, err := nodes.Get(ctx, node); err != nil {
		return err
	}
	if err := nodes.Pending(ctx, node, cluster.ReasonVerifierUnreachable, "no answer"); err != nil {
		return err
	}
	if _, err := nodes.Withdraw(ctx, node, cluster.ReasonVerifierUnreachable, "evidence too old"); err != nil {
		return err
	}
	if err := nodes.MarkVerified(ctx, node, true, "r-1", "ok"); err != nil {
		return err
	}
	if _, err := nodes.MarkFailed(ctx, node, cluster.StatusAttestationFailed, []string{"pcr-0"}, "r-2", "bad"); err != nil {
		return err
	}
	if n, err := nodes.Evict(ctx, node, []string{ns}); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("evicted %d pods, want 1", n)
	}
	if _, err := nodes.ClearDisabled(ctx); err != nil {
		return err
	}
	return nodes.Onboarded(ctx, node, true, "r-3")
}

func TestTheShippedRoleIsEnough(t *testing.T) {
	t.Parallel()
	admin := clustertest.Clientset(t)
	user := bind(t, admin, grants(shippedRole(t)))

	if err := everything(t, admin, user); err != nil {
		t.Fatalf("an operation failed with only the permissions of rbac.yaml: %v", err)
	}

	// And the role is no more than it says: the same user may not do what
	// the package never does.
	ctx := context.Background()
	node := uniqueName(t, "n")
	enabledNode(node).Create(t, admin)
	n, err := user.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	n.Spec.Unschedulable = true
	forbidden := map[string]error{}
	_, forbidden["update a node"] = user.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	forbidden["delete a node"] = user.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
	_, forbidden["list secrets"] = user.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	forbidden["delete pods"] = user.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: error = %v, want forbidden", what, err)
		}
	}
}

func TestEveryPermissionOfTheShippedRoleIsUsed(t *testing.T) {
	t.Parallel()
	admin := clustertest.Clientset(t)
	all := grants(shippedRole(t))
	for _, drop := range all {
		t.Run("without "+drop.String()+" an operation is forbidden", func(t *testing.T) {
			t.Parallel()
			rest := slices.DeleteFunc(slices.Clone(all), func(g grant) bool { return g == drop })
			user := bind(t, admin, rest)
			err := everything(t, admin, user)
			if !apierrors.IsForbidden(err) {
				t.Errorf("error = %v, want forbidden", err)
			}
			var blocked *cluster.EvictionBlockedError
			if errors.As(err, &blocked) {
				t.Errorf("unexpected refusal: %v", err)
			}
		})
	}
}
