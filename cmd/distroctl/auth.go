package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// userCmd, roleCmd and permissionCmd manage client auth through the Nacos
// auth API (/nacos/v1/auth/users, roles, permissions). They need a global
// admin (--username/--password), except changing one's own password.
func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (servers with auth on)"}
	var page, pageSize int
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			p, err := cl.Users(cmd.Context(), page, pageSize)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(p)
			}
			rows := make([][]string, len(p.PageItems))
			for i, u := range p.PageItems {
				rows[i] = []string{u.Username}
			}
			return c.pageTable([]string{"USER"}, rows, p.TotalCount, page, p.PagesAvailable)
		},
	}
	pageFlags(list, &page, &pageSize)
	var newPW string
	add := &cobra.Command{
		Use: "add NAME", Short: "Create a user", Args: cobra.ExactArgs(1),
		Example: `  DISTRO_USERNAME=nacos DISTRO_PASSWORD=... distroctl user add app1 --new-password '...'
  echo "$PW" | distroctl user add app1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			pw, err := c.newPassword(cmd, newPW)
			if err != nil {
				return err
			}
			if err := cl.CreateUser(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "created user %s\n", args[0])
			return nil
		},
	}
	add.Flags().StringVar(&newPW, "new-password", "", "the user's password (default: one line read from standard input)")
	passwd := &cobra.Command{
		Use: "passwd NAME", Short: "Change a user's password (your own, or anyone's as an admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			pw, err := c.newPassword(cmd, newPW)
			if err != nil {
				return err
			}
			if err := cl.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "changed the password of %s\n", args[0])
			return nil
		},
	}
	passwd.Flags().StringVar(&newPW, "new-password", "", "the new password (default: one line read from standard input)")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user (and its roles)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "deleted user %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, add, passwd, del)
	return cmd
}

func (c *cli) roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles given to users (servers with auth on)"}
	var page, pageSize int
	var user string
	list := &cobra.Command{
		Use: "list", Short: "List role bindings", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			p, err := cl.Roles(cmd.Context(), user, page, pageSize)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(p)
			}
			rows := make([][]string, len(p.PageItems))
			for i, b := range p.PageItems {
				rows[i] = []string{b.Role, b.Username}
			}
			return c.pageTable([]string{"ROLE", "USER"}, rows, p.TotalCount, page, p.PagesAvailable)
		},
	}
	pageFlags(list, &page, &pageSize)
	list.Flags().StringVar(&user, "user", "", "only this user's roles")
	add := &cobra.Command{
		Use: "add ROLE USER", Short: "Give USER the role ROLE (creating the role)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.AddRole(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "gave role %s to %s\n", args[0], args[1])
			return nil
		},
	}
	del := &cobra.Command{
		Use: "delete ROLE [USER]", Short: "Take ROLE from USER, or delete ROLE and its permissions", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			u := ""
			if len(args) == 2 {
				u = args[1]
			}
			if err := cl.DeleteRole(cmd.Context(), args[0], u); err != nil {
				return err
			}
			if u == "" {
				fmt.Fprintf(c.stdout, "deleted role %s\n", args[0])
			} else {
				fmt.Fprintf(c.stdout, "took role %s from %s\n", args[0], u)
			}
			return nil
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}

func (c *cli) permissionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "permission", Short: "Manage permissions of roles (servers with auth on)",
		Long: `Manage permissions of roles. A permission lets a role do an action (r, w or rw)
on the resources matching a pattern "namespace:group:naming/service", where '*'
matches any run of characters: "public:*:*" is all of namespace public,
"dev:DEFAULT_GROUP:naming/order*" the services starting with "order".`}
	var page, pageSize int
	var role string
	list := &cobra.Command{
		Use: "list", Short: "List permissions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			p, err := cl.Permissions(cmd.Context(), role, page, pageSize)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(p)
			}
			rows := make([][]string, len(p.PageItems))
			for i, pm := range p.PageItems {
				rows[i] = []string{pm.Role, pm.Resource, pm.Action}
			}
			return c.pageTable([]string{"ROLE", "RESOURCE", "ACTION"}, rows, p.TotalCount, page, p.PagesAvailable)
		},
	}
	pageFlags(list, &page, &pageSize)
	list.Flags().StringVar(&role, "role", "", "only this role's permissions")
	change := func(use, short, done string, fn func(cmd *cobra.Command, role, resource, action string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " ROLE RESOURCE ACTION", Short: short, Args: cobra.ExactArgs(3),
			Example: "  distroctl permission " + use + " dev-readers 'dev:*:*' r",
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := fn(cmd, args[0], args[1], args[2]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s %s on %s for %s\n", done, args[2], args[1], args[0])
				return nil
			},
		}
	}
	add := change("add", "Grant a permission to a role", "granted", func(cmd *cobra.Command, r, res, act string) error {
		cl, _, err := c.client()
		if err != nil {
			return err
		}
		return cl.AddPermission(cmd.Context(), r, res, act)
	})
	del := change("delete", "Revoke a permission", "revoked", func(cmd *cobra.Command, r, res, act string) error {
		cl, _, err := c.client()
		if err != nil {
			return err
		}
		return cl.DeletePermission(cmd.Context(), r, res, act)
	})
	cmd.AddCommand(list, add, del)
	return cmd
}

func pageFlags(cmd *cobra.Command, page, pageSize *int) {
	cmd.Flags().IntVar(page, "page", 1, "page number, from 1")
	cmd.Flags().IntVar(pageSize, "page-size", 100, "entries per page")
}

// pageTable prints rows and a page footer.
func (c *cli) pageTable(header []string, rows [][]string, total, page, pages int) error {
	if err := c.table(header, rows); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\n%d in all (page %d of %d)\n", total, page, max(pages, 1))
	return nil
}

// newPassword returns flag, or one line of standard input when it is empty.
func (c *cli) newPassword(cmd *cobra.Command, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return "", fmt.Errorf("no password: give --new-password or one line on standard input")
		}
		return "", fmt.Errorf("empty password")
	}
	return line, nil
}
