package tcctl

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"
)

// group is a command that only holds its subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

// fetch asks the verifier for what a command shows: the API's answer
// (raw JSON or a value) and its table.
type fetch func(ctx context.Context, c *Client, args []string) (answer any, t *table, err error)

// showing completes cmd as a command that shows the answer of f; -o chooses
// the format.
func (a *app) showing(cmd *cobra.Command, f fetch) *cobra.Command {
	var format string
	cmd.RunE = a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
		answer, t, err := f(ctx, c, args)
		if err != nil {
			return err
		}
		return render(out, format, answer, t)
	})
	addOutputFlag(cmd, &format)
	return cmd
}

// deleting is a command that deletes each argument's object, what, under
// the collection path; resolve, when not nil, turns an argument into the
// object's id.
func (a *app) deleting(use, short, what, collection string, resolve func(ctx context.Context, c *Client, arg string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			for _, arg := range args {
				id := arg
				if resolve != nil {
					var err error
					if id, err = resolve(ctx, c, arg); err != nil {
						return err
					}
				}
				if err := c.delete(ctx, collection+"/"+seg(id)); err != nil {
					return fmt.Errorf("delete %s %s: %w", what, arg, err)
				}
				_, _ = fmt.Fprintf(out, "%s %s deleted\n", what, arg)
			}
			return nil
		}),
	}
}

// idByName resolves a name to the id of the one object of the collection
// that bears it, asking the collection for nameEqualTo; the answer lists the
// objects under key. An argument that names no object is taken as an id.
func idByName(ctx context.Context, c *Client, what, collection, key, nameOrID string) (string, error) {
	var list map[string][]struct {
		ID string `json:"id"`
	}
	if err := c.get(ctx, collection, url.Values{"nameEqualTo": {nameOrID}}, &list); err != nil {
		return "", fmt.Errorf("find %s %s: %w", what, nameOrID, err)
	}
	if objs := list[key]; len(objs) == 1 {
		return objs[0].ID, nil
	}
	return nameOrID, nil
}
