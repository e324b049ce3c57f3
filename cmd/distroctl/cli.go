package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/client"
)

const (
	// defaultServer is where a local distrod (or Nacos) listens.
	defaultServer = "127.0.0.1:8848"
	// envServer overrides defaultServer when --server is not given.
	envServer = "DISTRO_SERVER"
	// envUsername and envPassword give the credentials when --username and
	// --password are not given (prefer the environment for the password:
	// a flag shows in the process list).
	envUsername = "DISTRO_USERNAME"
	envPassword = "DISTRO_PASSWORD"
)

// cli holds one invocation's I/O, environment and global flags. Tests build
// one with buffers, a fixed clock and extra client options, and call run.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// clientOpts are appended to the options every command's client gets;
	// tests use it to seed the server choice.
	clientOpts []client.Option

	root *cobra.Command

	// Global flags.
	servers   []string
	namespace string
	timeout   time.Duration
	jsonOut   bool
	username  string
	password  string
}

func newCLI(stdout, stderr io.Writer, getenv func(string) string) *cli {
	return &cli{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
}

// run executes args and returns the exit status, printing any error to
// stderr as one line.
func (c *cli) run(ctx context.Context, args []string) int {
	root := c.rootCmd()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(c.stderr, "distroctl: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine folds a multi-line message (cobra's suggestions) into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "distroctl",
		Short: "Command-line client for the distro service registry (Nacos naming API)",
		Long: `distroctl talks to distro servers (or Nacos servers) over the Nacos naming
HTTP v1 API. Each request goes to a random server from --server; a server
that is down or answers 5xx is skipped and the next one is tried.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.CompletionOptions.HiddenDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringSliceVar(&c.servers, "server", []string{defaultServer},
		"server HTTP addresses host:port, comma-separated or repeated (env "+envServer+")")
	pf.StringVar(&c.namespace, "namespace", "", "namespace id (default: public)")
	pf.DurationVar(&c.timeout, "timeout", client.DefaultTimeout, "timeout of each attempt on one server")
	pf.BoolVar(&c.jsonOut, "json", false, "print JSON instead of tables")
	pf.StringVar(&c.username, "username", "", "user to log in as on servers with auth on (env "+envUsername+")")
	pf.StringVar(&c.password, "password", "", "password of --username (env "+envPassword+", preferred)")

	root.AddCommand(c.instanceCmd(), c.serviceCmd(), c.statusCmd(), c.membersCmd(), c.versionCmd(),
		c.userCmd(), c.roleCmd(), c.permissionCmd())
	c.root = root
	return root
}

// serverList returns the servers to use: --server if given, else
// $DISTRO_SERVER, else the flag default.
func (c *cli) serverList() ([]string, error) {
	raw := c.servers
	if !c.root.PersistentFlags().Changed("server") {
		if env := c.getenv(envServer); strings.TrimSpace(env) != "" {
			raw = strings.Split(env, ",")
		}
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no server given (--server or %s)", envServer)
	}
	return out, nil
}

// client builds the API client from the global flags.
func (c *cli) client() (*client.Client, []string, error) {
	servers, err := c.serverList()
	if err != nil {
		return nil, nil, err
	}
	opts := []client.Option{
		client.WithTimeout(c.timeout),
		client.WithNamespace(c.namespace),
		client.WithUserAgent("distroctl/" + versionString()),
	}
	if user, pw := c.credentials(); user != "" {
		opts = append(opts, client.WithCredentials(user, pw))
	}
	cl, err := client.New(servers, append(opts, c.clientOpts...)...)
	if err != nil {
		return nil, nil, strip(err)
	}
	return cl, servers, nil
}

// credentials returns --username/--password, else the environment's.
func (c *cli) credentials() (string, string) {
	user, pw := c.username, c.password
	if !c.root.PersistentFlags().Changed("username") {
		user = strings.TrimSpace(c.getenv(envUsername))
	}
	if !c.root.PersistentFlags().Changed("password") {
		pw = c.getenv(envPassword)
	}
	return user, pw
}

// strip drops the package prefix from client.New errors: the user typed
// --server, not "client".
func strip(err error) error {
	if s, ok := strings.CutPrefix(err.Error(), "client: "); ok {
		return fmt.Errorf("--server: %s", s)
	}
	return err
}

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}

// cellSafe keeps server-supplied text from breaking table columns.
var cellSafe = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// table writes rows under header, aligned with tabwriter.
func (c *cli) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, cell := range r {
			cells[i] = cellSafe.Replace(cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// orDash shows an empty cell as "-" so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
