package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/client"
)

func (c *cli) membersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List cluster members as one server sees them",
		Long: `List the cluster members with GET /nacos/v1/core/cluster/nodes, asked of
one server from --server (with failover). LAST CONTACT is how long ago that
member last refreshed (extendInfo.lastRefreshTime), by this machine's clock.`,
		Example: `  distroctl members --server 10.0.0.1:8848
  distroctl members --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			nodes, err := cl.ClusterNodes(cmd.Context())
			if err != nil {
				return err
			}
			if nodes == nil {
				nodes = []client.Node{}
			}
			if c.jsonOut {
				return c.printJSON(nodes)
			}
			now := c.now()
			nodes = slices.Clone(nodes)
			slices.SortStableFunc(nodes, func(a, b client.Node) int { return strings.Compare(address(a), address(b)) })
			rows := make([][]string, len(nodes))
			for i, n := range nodes {
				rows[i] = []string{address(n), orDash(n.State), ago(now, n.LastRefreshTime()), strconv.Itoa(n.FailAccessCnt)}
			}
			return c.table([]string{"ADDRESS", "STATE", "LAST CONTACT", "FAILS"}, rows)
		},
	}
}

// address is the member's identity, built from ip and port if missing.
func address(n client.Node) string {
	if n.Address != "" {
		return n.Address
	}
	if n.IP == "" {
		return "-"
	}
	return n.IP + ":" + strconv.Itoa(n.Port)
}

// ago renders the time since t compactly: "1.2s ago", "3m4s ago",
// "2h5m ago", "3d ago"; "-" for an unknown time. A time in the future (the
// member's clock is ahead of ours) shows as "just now".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	case d < time.Hour:
		return d.Truncate(time.Second).String() + " ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
