// Command distrod is the distro registry server: a Nacos-compatible naming
// server whose cluster keeps ephemeral registrations consistent with the
// Distro protocol.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/config"
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
		Use:           "distrod",
		Short:         "Nacos-compatible service registry with a Distro (AP) cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
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
	root.AddCommand(versionCmd())
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "print the version", Run: func(*cobra.Command, []string) {
		fmt.Println("distrod", version)
	}}
}
