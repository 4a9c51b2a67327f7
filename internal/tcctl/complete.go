package tcctl

import (
	"slices"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/flavor"
)

// Completion of ids from the verifier (cobra's hidden __complete command
// calls these with the saved login); without a login or a verifier there
// is nothing to offer, and no file names either.

// completeFlavorIDs completes flavor ids, each with its part and label,
// leaving out those already on the command line.
func (a *app) completeFlavorIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var coll flavor.SignedFlavorCollection
	if err := c.get(cmd.Context(), "/hvs/v2/flavors", nil, &coll); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(coll.SignedFlavors))
	for _, sf := range coll.SignedFlavors {
		m := sf.Flavor.Meta
		if !slices.Contains(args, m.ID) {
			out = append(out, m.ID+"\t"+string(m.Description.FlavorPart)+" "+m.Description.Label)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
