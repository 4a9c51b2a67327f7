package tcctl

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
)

// fieldManager names tcctl in the Nodes' managed fields.
const fieldManager = "tcctl"

func (a *app) nodeCmd() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "See and re-onboard the Kubernetes Nodes the attestation manager acts on",
	}
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $"+EnvKubeconfig+", else ~/.kube/config)")
	kube := func() (kubernetes.Interface, error) { return a.env.NewKube(kubeconfig) }
	cmd.AddCommand(a.nodeStatus(kube), a.nodeOnboard(kube))
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

func (a *app) nodeStatus(kube func() (kubernetes.Interface, error)) *cobra.Command {
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
			views := make([]nodeView, 0, len(infos))
			for _, n := range infos {
				views = append(views, viewOf(n))
			}
			return render(cmd.OutOrStdout(), format, views, nodeTable(views))
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) nodeOnboard(kube func() (kubernetes.Interface, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "onboard <node>...",
		Short: "Ask the attestation manager to re-attest a Node and lift its cordon if it passes",
		Long: `Set the annotation ` + cluster.AnnotationOnboard + ` on the Nodes. The attestation
manager then attests each again; on a trusted report it marks the Node
verified, lifts the cordon and taint it set (an operator's own cordon stays)
and removes the annotation. Nothing else is changed here.`,
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
				patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
					cluster.AnnotationOnboard: a.env.Now().UTC().Format(time.RFC3339),
				}}})
				if err != nil {
					return err
				}
				if _, err := cs.CoreV1().Nodes().Patch(cmd.Context(), name, types.MergePatchType, patch,
					metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
					return fmt.Errorf("request onboarding of node %s: %w", name, err)
				}
				_, _ = fmt.Fprintf(cmd.OutOrStdout(), "node %s: onboarding requested; the attestation manager re-attests it\n", name)
			}
			return nil
		},
	}
}
