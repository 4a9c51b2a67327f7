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

// resolver turns a command's argument into an object's id.
type resolver func(ctx context.Context, c *Client, arg string) (string, error)

// id resolves arg; a nil resolver takes arg as the id.
func (r resolver) id(ctx context.Context, c *Client, arg string) (string, error) {
	if r == nil {
		return arg, nil
	}
	return r(ctx, c, arg)
}

// listing is the list command of the collection: rows makes the table of
// its answer L; what names the objects in errors.
func listing[L any](a *app, short, what, collection string, rows func(L) *table) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs}
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		list, raw, err := getAs[L](ctx, c, collection, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", what, err)
		}
		return raw, rows(list), nil
	})
}

// getting completes cmd as the command that shows the object, what, of the
// collection that its one argument names (through resolve).
func getting[T any](a *app, cmd *cobra.Command, what, collection string, resolve resolver, rows func(...T) *table) *cobra.Command {
	cmd.Args = cobra.ExactArgs(1)
	return a.showing(cmd, func(ctx context.Context, c *Client, args []string) (any, *table, error) {
		id, err := resolve.id(ctx, c, args[0])
		if err != nil {
			return nil, nil, err
		}
		v, raw, err := getAs[T](ctx, c, collection+"/"+seg(id), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("get %s %s: %w", what, args[0], err)
		}
		return raw, rows(v), nil
	})
}

// deleting is a command that deletes each argument's object, what, under
// the collection path; resolve turns an argument into the object's id.
func (a *app) deleting(use, short, what, collection string, resolve resolver) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			for _, arg := range args {
				id, err := resolve.id(ctx, c, arg)
				if err != nil {
					return err
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
