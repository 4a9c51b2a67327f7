package tcctl

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
)

// fieldManager names tcctl in the Nodes' managed fields.
const fieldManager = "tcctl"

func (a *app) nodeCmd() *cobra.Command {
	var kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "See and re-onboard the Kubernetes Nodes the attestation manager acts on",
	}
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $"+EnvKubeconfig+", else ~/.kube/config)")
	cmd.PersistentFlags().StringVarP(&namespace, "namespace", "n", cluster.DefaultNamespace,
		"the attestation manager's namespace, which holds the onboard requests")
	kube := func() (kubernetes.Interface, error) { return a.env.NewKube(kubeconfig) }
	requests := func(cs kubernetes.Interface) *cluster.OnboardRequests {
		return cluster.NewOnboardRequests(cs, namespace, fieldManager)
	}
	cmd.AddCommand(a.nodeStatus(kube, requests), a.nodeOnboard(kube, requests))
	return cmd
}

// nodeView is a Node as the node commands show it.
type nodeView struct {
	Name             string `json:"name"`
	HostID           string `json:"host_id"`
	Enabled          bool   `json:"enabled"`
	Status           string `json:"status"`
	Ready            bool   `json:"ready"`
	Cordoned         bool   `json:"cordoned"`
	OnboardRequested bool   `json:"onboard_requested"`
	LastReport       string `json:"last_report,omitempty"`
}

func viewOf(n cluster.NodeInfo) nodeView {
	return nodeView{Name: n.Name, HostID: n.HostID, Enabled: n.Enabled, Status: string(n.Status), Ready: n.Ready,
		Cordoned: n.Cordoned, OnboardRequested: n.OnboardRequested, LastReport: n.LastReport}
}

func nodeTable(ns []nodeView) *table {
	t := &table{header: []string{"NODE", "HOST ID", "STATUS", "READY", "CORDONED", "ONBOARD REQUESTED", "LAST REPORT"}}
	for _, n := range ns {
		status := n.Status
		if !n.Enabled {
			status = "not enabled"
		}
		t.add(n.Name, orDash(n.HostID), status, boolCell(n.Ready), boolCell(n.Cordoned), boolCell(n.OnboardRequested), orDash(n.LastReport))
	}
	return t
}

func (a *app) nodeStatus(kube func() (kubernetes.Interface, error), requests func(kubernetes.Interface) *cluster.OnboardRequests) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status [node...]",
		Short: "Show the attestation status of the enabled Nodes (or of the named ones)",
		Long: `Show, from the Node objects, what the attestation manager recorded: the
host id, the status label (` + cluster.LabelStatus + `), the ready label
(` + cluster.LabelReady + `), whether the Node is cordoned and whether
re-onboarding was requested. Without arguments, the Nodes labelled
` + cluster.LabelEnabled + `=true.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := kube()
			if err != nil {
				return err
			}
			nodes := cluster.New(cs, cluster.Options{Name: fieldManager, Instance: fieldManager})
			var infos []cluster.NodeInfo
			if len(args) == 0 {
				if infos, err = nodes.EnabledNodes(cmd.Context()); err != nil {
					return err
				}
			}
			for _, name := range args {
				info, err := nodes.Get(cmd.Context(), name)
				if err != nil {
					return err
				}
				infos = append(infos, info)
			}
			asked, err := requests(cs).List(cmd.Context())
			if err != nil {
				return err
			}
			views := make([]nodeView, 0, len(infos))
			for _, n := range infos {
				n.OnboardRequested = asked[n.Name] != ""
				views = append(views, viewOf(n))
			}
			return render(cmd.OutOrStdout(), format, views, nodeTable(views))
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) nodeOnboard(kube func() (kubernetes.Interface, error), requests func(kubernetes.Interface) *cluster.OnboardRequests) *cobra.Command {
	return &cobra.Command{
		Use:   "onboard <node>...",
		Short: "Ask the attestation manager to re-attest a Node and lift its cordon if it passes",
		Long: `Record a re-onboarding request for each Node in the ConfigMap
` + cluster.OnboardConfigMap + ` of the attestation manager's namespace
(--namespace), with your Kubernetes credentials: RBAC decides who may (the
chart's onboarder Role), and a node's own identity never may. The attestation
manager then re-baselines and attests each again; on a trusted report it
marks the Node verified, lifts the cordon and taint it set (an operator's own
cordon stays) and clears the request. The Node annotation
` + cluster.AnnotationOnboard + ` is ignored. Nothing else is changed here.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := kube()
			if err != nil {
				return err
			}
			nodes := cluster.New(cs, cluster.Options{Name: fieldManager, Instance: fieldManager})
			for _, name := range args {
				info, err := nodes.Get(cmd.Context(), name)
				if err != nil {
					return err
				}
				if !info.Enabled {
					return fmt.Errorf("node %s: %w (label %s=true missing)", name, cluster.ErrNotEnabled, cluster.LabelEnabled)
				}
				if err := requests(cs).Request(cmd.Context(), name, a.env.Now()); err != nil {
					return err
				}
				_, _ = fmt.Fprintf(cmd.OutOrStdout(), "node %s: onboarding requested; the attestation manager re-attests it\n", name)
			}
			return nil
		},
	}
}
