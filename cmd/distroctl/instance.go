package main

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/client"
)

// defaultCluster is the Nacos cluster of an instance registered without one.
const defaultCluster = "DEFAULT"

func (c *cli) instanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "Register, deregister and list service instances",
	}
	cmd.AddCommand(c.instanceRegisterCmd(), c.instanceDeregisterCmd(), c.instanceListCmd())
	return cmd
}

func (c *cli) instanceRegisterCmd() *cobra.Command {
	var (
		service, group, ip, cluster string
		port                        int
		weight                      float64
		metadata                    map[string]string
		ephemeral, healthy, enabled bool
	)
	cmd := &cobra.Command{
		Use:   "register --service S --ip IP --port P",
		Short: "Register an instance (replaces one with the same ip, port and cluster)",
		Long: `Register an instance with POST /nacos/v1/ns/instance.

An ephemeral instance (the default) must be kept alive by heartbeats, or the
server marks it unhealthy after 15 s and removes it after 30 s; distroctl
does not send heartbeats. Use --ephemeral=false for an instance that stays
until it is deregistered.`,
		Example: `  distroctl instance register --service orders --ip 10.0.0.7 --port 8080 --metadata version=1.4,zone=a
  distroctl instance register --service orders --ip 10.0.0.8 --port 8080 --ephemeral=false --weight 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			inst := client.Instance{
				ServiceName: client.GroupedName(group, service),
				IP:          ip,
				Port:        port,
				Weight:      weight,
				Healthy:     healthy,
				Enabled:     enabled,
				Ephemeral:   ephemeral,
				ClusterName: cluster,
				Metadata:    metadata,
			}
			if err := cl.RegisterInstance(cmd.Context(), inst); err != nil {
				return err
			}
			if c.jsonOut {
				if inst.Metadata == nil {
					inst.Metadata = map[string]string{}
				}
				return c.printJSON(inst)
			}
			fmt.Fprintf(c.stdout, "registered %s:%d in %s (cluster %s, ephemeral=%t)\n",
				ip, port, inst.ServiceName, cluster, ephemeral)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.StringVar(&group, "group", client.DefaultGroup, "group name")
	f.StringVar(&ip, "ip", "", "instance IP (required)")
	f.IntVar(&port, "port", 0, "instance port (required)")
	f.StringVar(&cluster, "cluster", defaultCluster, "cluster name")
	f.Float64Var(&weight, "weight", 1, "weight, 0 to 10000; 0 means never selected")
	f.StringToStringVar(&metadata, "metadata", nil, "metadata as k=v,k=v (repeatable)")
	f.BoolVar(&ephemeral, "ephemeral", true, "ephemeral instance, removed unless it sends heartbeats")
	f.BoolVar(&healthy, "healthy", true, "initial health")
	f.BoolVar(&enabled, "enabled", true, "enabled (disabled instances are never returned to clients)")
	mustRequire(cmd, "service", "ip", "port")
	return cmd
}

func (c *cli) instanceDeregisterCmd() *cobra.Command {
	var (
		service, group, ip, cluster string
		port                        int
		ephemeral                   bool
	)
	cmd := &cobra.Command{
		Use:     "deregister --service S --ip IP --port P",
		Short:   "Remove an instance (succeeds if it does not exist)",
		Example: `  distroctl instance deregister --service orders --ip 10.0.0.7 --port 8080`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.DeregisterInstance(cmd.Context(), service, group, ip, port, cluster, ephemeral); err != nil {
				return err
			}
			grouped := client.GroupedName(group, service)
			if c.jsonOut {
				return c.printJSON(map[string]any{
					"serviceName": grouped, "ip": ip, "port": port, "clusterName": cluster, "ephemeral": ephemeral,
				})
			}
			fmt.Fprintf(c.stdout, "deregistered %s:%d from %s (cluster %s)\n", ip, port, grouped, cluster)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.StringVar(&group, "group", client.DefaultGroup, "group name")
	f.StringVar(&ip, "ip", "", "instance IP (required)")
	f.IntVar(&port, "port", 0, "instance port (required)")
	f.StringVar(&cluster, "cluster", defaultCluster, "cluster name")
	f.BoolVar(&ephemeral, "ephemeral", true, "the instance was registered as ephemeral")
	mustRequire(cmd, "service", "ip", "port")
	return cmd
}

func (c *cli) instanceListCmd() *cobra.Command {
	var (
		service, group string
		clusters       []string
		healthyOnly    bool
	)
	cmd := &cobra.Command{
		Use:   "list --service S",
		Short: "List a service's enabled instances",
		Example: `  distroctl instance list --service orders
  distroctl instance list --service orders --clusters a,b --healthy-only --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := c.client()
			if err != nil {
				return err
			}
			info, err := cl.ListInstances(cmd.Context(), service, group, clusters, healthyOnly)
			if err != nil {
				return err
			}
			if info.Hosts == nil {
				info.Hosts = []client.Instance{}
			}
			if c.jsonOut {
				return c.printJSON(info)
			}
			hosts := slices.Clone(info.Hosts)
			slices.SortStableFunc(hosts, func(a, b client.Instance) int {
				if r := compareIP(a.IP, b.IP); r != 0 {
					return r
				}
				if a.Port != b.Port {
					return a.Port - b.Port
				}
				return strings.Compare(a.ClusterName, b.ClusterName)
			})
			rows := make([][]string, 0, len(hosts))
			for _, h := range hosts {
				rows = append(rows, []string{
					orDash(h.InstanceID), h.IP, strconv.Itoa(h.Port), orDash(h.ClusterName),
					strconv.FormatFloat(h.Weight, 'g', -1, 64),
					strconv.FormatBool(h.Healthy), strconv.FormatBool(h.Enabled), strconv.FormatBool(h.Ephemeral),
					formatMetadata(h.Metadata),
				})
			}
			return c.table([]string{"INSTANCE ID", "IP", "PORT", "CLUSTER", "WEIGHT", "HEALTHY", "ENABLED", "EPHEMERAL", "METADATA"}, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.StringVar(&group, "group", client.DefaultGroup, "group name")
	f.StringSliceVar(&clusters, "clusters", nil, "only these clusters, comma-separated (default: all)")
	f.BoolVar(&healthyOnly, "healthy-only", false, "only healthy instances")
	mustRequire(cmd, "service")
	return cmd
}

// compareIP orders IP addresses numerically (10.0.0.7 before 10.0.0.10),
// falling back to text order for anything that does not parse.
func compareIP(a, b string) int {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if errA == nil && errB == nil {
		return pa.Compare(pb)
	}
	return strings.Compare(a, b)
}

// formatMetadata renders metadata as sorted k=v pairs, "-" when empty.
func formatMetadata(md map[string]string) string {
	if len(md) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(md))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + md[k]
	}
	return strings.Join(parts, ",")
}

// mustRequire marks flags required; a typo in a name is a programming error.
func mustRequire(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.MarkFlagRequired(n); err != nil {
			panic(err)
		}
	}
}
