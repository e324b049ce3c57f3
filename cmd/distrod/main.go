// Command distrod is the distro registry server: a Nacos-compatible naming
// server whose cluster keeps ephemeral registrations consistent with the
// Distro protocol.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/config"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/server"
	"github.com/distro-registry/distro/internal/telemetry"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "distrod:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	cfg := config.Default()
	root := &cobra.Command{
		Use:               "distrod",
		Short:             "Nacos-compatible service registry with a Distro (AP) cluster",
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Load(cmd.Flags(), &cfg, nil); err != nil {
				return err
			}
			log, err := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			srv, err := server.New(cfg, log)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.Run(ctx)
		},
	}
	cfg.RegisterFlags(root.Flags())
	root.AddCommand(versionCmd(), addressServerCmd())
	return root
}

// addressServerCmd serves a members file in cluster.conf format, as the
// address server that --address-server polls.
func addressServerCmd() *cobra.Command {
	var file, bind string
	var port int
	cmd := &cobra.Command{
		Use:   "address-server",
		Short: "serve a member list file at " + member.AddressServerPath + " for --address-server",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			log, err := telemetry.NewLogger(os.Stderr, "info", "text")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return member.ServeAddressServer(ctx, net.JoinHostPort(bind, strconv.Itoa(port)), file, log)
		},
	}
	cmd.Flags().StringVar(&file, "file", "cluster.conf", "member list file (cluster.conf format), re-read on every request")
	cmd.Flags().StringVar(&bind, "bind", "0.0.0.0", "address to listen on")
	cmd.Flags().IntVar(&port, "port", 8080, "port to listen on")
	return cmd
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "print the version", Run: func(*cobra.Command, []string) {
		fmt.Println("distrod", version)
	}}
}
