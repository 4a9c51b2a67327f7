package tcctl

import (
	"slices"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
)

// Completion of ids from the verifier (cobra's hidden __complete command
// calls these with the saved login); without a login or a verifier there
// is nothing to offer, and no file names either.

// completeFrom completes with the "id\tdescription" lines that lines makes
// of the list the verifier serves at path.
func completeFrom[L any](a *app, cmd *cobra.Command, path string, lines func(L) []string) ([]string, cobra.ShellCompDirective) {
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list L
	if err := c.get(cmd.Context(), path, nil, &list); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return lines(list), cobra.ShellCompDirectiveNoFileComp
}

// completeFlavorIDs completes flavor ids, each with its part and label,
// leaving out those already on the command line.
func (a *app) completeFlavorIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return completeFrom(a, cmd, "/hvs/v2/flavors", func(coll flavor.SignedFlavorCollection) []string {
		out := make([]string, 0, len(coll.SignedFlavors))
		for _, sf := range coll.SignedFlavors {
			m := sf.Flavor.Meta
			if !slices.Contains(args, m.ID) {
				out = append(out, m.ID+"\t"+string(m.Description.FlavorPart)+" "+m.Description.Label)
			}
		}
		return out
	})
}

// completeHostIDs completes host ids from the verifier when logged in.
func (a *app) completeHostIDs(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return completeFrom(a, cmd, "/hvs/v2/hosts", func(list restapi.HostList) []string {
		ids := make([]string, 0, len(list.Hosts))
		for _, h := range list.Hosts {
			ids = append(ids, h.ID+"\t"+h.HostName)
		}
		return ids
	})
}
