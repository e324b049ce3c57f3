package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=v0.3.0" ./cmd/distroctl
var version = "dev"

// versionString returns the build-time version, else the module version
// recorded by `go install module@version`, else "dev".
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the distroctl version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if c.jsonOut {
				return c.printJSON(map[string]string{
					"version": versionString(), "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			_, err := c.stdout.Write([]byte("distroctl " + versionString() + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"))
			return err
		},
	}
}
