package tcctl

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

func userTable(us ...restapi.User) *table {
	t := &table{header: []string{"USER ID", "USERNAME", "CREATED", "LOCKED UNTIL"}}
	for _, u := range us {
		t.add(u.ID, u.Username, timeCell(&u.CreatedAt), timeCell(u.LockedUntil))
	}
	return t
}

// userID resolves a username to its id.
func userID(ctx context.Context, c *Client, name string) (string, error) {
	var us []restapi.User
	if err := c.get(ctx, "/aas/v1/users", url.Values{"name": {name}}, &us); err != nil {
		return "", fmt.Errorf("find user %s: %w", name, err)
	}
	if len(us) != 1 {
		return "", fmt.Errorf("find user %s: no such user", name)
	}
	return us[0].ID, nil
}

func (a *app) userList() *cobra.Command {
	return listing(a, "List users", "users", "/aas/v1/users", func(us []restapi.User) *table { return userTable(us...) })
}

func (a *app) userCreate() *cobra.Command {
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "create <username>",
		Short: "Create a user (password from --password-file or a prompt)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the new user's password")
	return a.showing(cmd, func(ctx context.Context, c *Client, args []string) (any, *table, error) {
		pw, err := a.readSecret(cmd, passwordFile, "", "password for the new user "+args[0]+": ")
		if err != nil {
			return nil, nil, err
		}
		u, raw, err := postAs[restapi.User](ctx, c, "/aas/v1/users", restapi.UserRequest{Username: args[0], Password: pw})
		if err != nil {
			return nil, nil, fmt.Errorf("create user %s: %w", args[0], err)
		}
		return raw, userTable(u), nil
	})
}

func (a *app) userDelete() *cobra.Command {
	return a.deleting("delete <username>...", "Delete users", "user", "/aas/v1/users", userID)
}

func (a *app) userPasswd() *cobra.Command {
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "passwd <username>",
		Short: "Set a user's password (this also lifts a lockout)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
		id, err := userID(ctx, c, args[0])
		if err != nil {
			return err
		}
		pw, err := a.readSecret(cmd, passwordFile, "", "new password for "+args[0]+": ")
		if err != nil {
			return err
		}
		if err := c.put(ctx, "/aas/v1/users/"+seg(id), restapi.PasswordRequest{Password: pw}, nil); err != nil {
			return fmt.Errorf("set the password of %s: %w", args[0], err)
		}
		_, _ = fmt.Fprintf(out, "password of %s changed\n", args[0])
		return nil
	})
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the new password")
	return cmd
}

func roleTable(rs ...restapi.Role) *table {
	t := &table{header: []string{"ROLE ID", "SERVICE", "NAME", "CONTEXT", "PERMISSIONS"}}
	for _, r := range rs {
		t.add(r.ID, r.Service, r.Name, orDash(r.Context), listCell(r.Permissions))
	}
	return t
}

// roleID resolves "SERVICE:NAME" or a name that only one role has to the
// role's id; anything else is taken as an id.
func roleID(ctx context.Context, c *Client, ref string) (string, error) {
	q := url.Values{}
	if service, name, ok := strings.Cut(ref, ":"); ok {
		q.Set("service", service)
		q.Set("name", name)
	} else {
		q.Set("name", ref)
	}
	var rs []restapi.Role
	if err := c.get(ctx, "/aas/v1/roles", q, &rs); err != nil {
		return "", fmt.Errorf("find role %s: %w", ref, err)
	}
	switch {
	case len(rs) == 1:
		return rs[0].ID, nil
	case len(rs) > 1:
		return "", fmt.Errorf("find role %s: %d roles match; name it SERVICE:NAME or by id", ref, len(rs))
	case strings.Contains(ref, ":"):
		return "", fmt.Errorf("find role %s: no such role", ref)
	}
	return ref, nil
}

func (a *app) roleList() *cobra.Command {
	var user, service string
	cmd := &cobra.Command{Use: "list", Short: "List roles, or the roles of a user", Args: cobra.NoArgs}
	cmd.Flags().StringVar(&user, "user", "", "the roles granted to this user")
	cmd.Flags().StringVar(&service, "service", "", "only roles of this service (AAS, CMS, HVS, ...)")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		path, q := "/aas/v1/roles", url.Values{}
		if user != "" {
			id, err := userID(ctx, c, user)
			if err != nil {
				return nil, nil, err
			}
			path = "/aas/v1/users/" + seg(id) + "/roles"
		} else if service != "" {
			q.Set("service", service)
		}
		rs, raw, err := getAs[[]restapi.Role](ctx, c, path, q)
		if err != nil {
			return nil, nil, fmt.Errorf("list roles: %w", err)
		}
		return raw, roleTable(rs...), nil
	})
}

func (a *app) roleCreate() *cobra.Command {
	var in restapi.RoleRequest
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create a role",
		Example: `  tcctl role create --service HVS --name ReportReader --permission "reports:search:*" --permission "reports:retrieve:*"`,
		Args:    cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&in.Service, "service", "", "service the role belongs to (required)")
	f.StringVar(&in.Name, "name", "", "role name (required)")
	f.StringVar(&in.Context, "context", "", "role context (for CMS:CertApprover: CN=..;SAN=..;certType=..)")
	f.StringArrayVar(&in.Permissions, "permission", nil, "permission rule resource:action:selector (repeatable)")
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("name")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		if in.Permissions == nil {
			in.Permissions = []string{}
		}
		r, raw, err := postAs[restapi.Role](ctx, c, "/aas/v1/roles", in)
		if err != nil {
			return nil, nil, fmt.Errorf("create role %s:%s: %w", in.Service, in.Name, err)
		}
		return raw, roleTable(r), nil
	})
}

func (a *app) roleDelete() *cobra.Command {
	return a.deleting("delete <SERVICE:NAME|id>...", "Delete roles", "role", "/aas/v1/roles", roleID)
}

func (a *app) roleGrant() *cobra.Command {
	return &cobra.Command{
		Use: "grant <username> <SERVICE:NAME|id>...", Short: "Add roles to a user", Args: cobra.MinimumNArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			uid, err := userID(ctx, c, args[0])
			if err != nil {
				return err
			}
			ids := make([]string, 0, len(args)-1)
			for _, ref := range args[1:] {
				id, err := roleID(ctx, c, ref)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if err := c.post(ctx, "/aas/v1/users/"+seg(uid)+"/roles", restapi.UserRolesRequest{RoleIDs: ids}, nil); err != nil {
				return fmt.Errorf("grant %s to %s: %w", strings.Join(args[1:], ", "), args[0], err)
			}
			_, _ = fmt.Fprintf(out, "granted %s to %s; it takes effect at the user's next login\n", strings.Join(args[1:], ", "), args[0])
			return nil
		}),
	}
}

func (a *app) roleRevoke() *cobra.Command {
	return &cobra.Command{
		Use: "revoke <username> <SERVICE:NAME|id>", Short: "Remove a role from a user", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			uid, err := userID(ctx, c, args[0])
			if err != nil {
				return err
			}
			rid, err := roleID(ctx, c, args[1])
			if err != nil {
				return err
			}
			if err := c.delete(ctx, "/aas/v1/users/"+seg(uid)+"/roles/"+seg(rid)); err != nil {
				return fmt.Errorf("revoke %s from %s: %w", args[1], args[0], err)
			}
			_, _ = fmt.Fprintf(out, "revoked %s from %s\n", args[1], args[0])
			return nil
		}),
	}
}
