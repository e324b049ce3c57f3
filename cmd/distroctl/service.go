package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/client"
)

func (c *cli) serviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "List services",
	}
	cmd.AddCommand(c.serviceListCmd())
	return cmd
}

func (c *cli) serviceListCmd() *cobra.Command {
	var (
		group          string
		page, pageSize int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List one page of a group's service names",
		Long: `List one page of a group's service names with GET /nacos/v1/ns/service/list.
The count is the group's total over all pages. A service whose last instance
is gone may stay listed for a while before the server drops it.`,
		Example: `  distroctl service list
  distroctl service list --group payments --page 2 --page-size 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if page < 1 || pageSize < 1 {
				return fmt.Errorf("--page and --page-size must be at least 1")
			}
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			list, err := cl.ListServices(cmd.Context(), group, page, pageSize)
			if err != nil {
				return err
			}
			if list.Doms == nil {
				list.Doms = []string{}
			}
			if c.jsonOut {
				return c.printJSON(list)
			}
			rows := make([][]string, len(list.Doms))
			for i, name := range list.Doms {
				rows[i] = []string{name}
			}
			if err := c.table([]string{"SERVICE"}, rows); err != nil {
				return err
			}
			pages := (list.Count + pageSize - 1) / pageSize
			fmt.Fprintf(c.stdout, "\n%d services in group %s (page %d of %d)\n", list.Count, group, page, max(pages, 1))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&group, "group", client.DefaultGroup, "group name")
	f.IntVar(&page, "page", 1, "page number, from 1")
	f.IntVar(&pageSize, "page-size", 100, "services per page")
	return cmd
}
