package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/client"
)

// serverStatus is one row of `distroctl status`, also its JSON form.
type serverStatus struct {
	Server string `json:"server"`
	// Status is the server's own status ("UP", ...); empty if it did not
	// answer, in which case Error says why.
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Ready  bool   `json:"ready"`
	// ReadyError is why the server is not ready (or /readyz failed).
	ReadyError string `json:"readyError,omitempty"`
	// Metrics is the full operator/metrics answer.
	Metrics map[string]any `json:"metrics,omitempty"`

	unreachable  bool // metrics failed without an HTTP answer
	readyUnknown bool // readyz failed without an HTTP answer
}

func (c *cli) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show status, readiness and counts of every server in --server",
		Long: `Ask every server given in --server (not just one) for its status
(GET /nacos/v1/ns/operator/metrics?onlyStatus=false) and readiness
(GET /readyz), in parallel, and print one row per server.

The table is always printed; the exit status is then 1 if any server is
unreachable or its metrics call failed (readiness alone does not count).`,
		Example: `  distroctl status --server 10.0.0.1:8848,10.0.0.2:8848,10.0.0.3:8848`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, servers, err := c.client()
			if err != nil {
				return err
			}
			rows := make([]serverStatus, len(servers))
			var wg sync.WaitGroup
			for i, s := range servers {
				wg.Go(func() { rows[i] = probe(cmd.Context(), cl, s) })
			}
			wg.Wait()

			failed := 0
			for _, r := range rows {
				if r.Error != "" {
					failed++
				}
			}
			if c.jsonOut {
				err = c.printJSON(rows)
			} else {
				err = c.printStatus(rows)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d servers unreachable or failing", failed, len(rows))
			}
			return nil
		},
	}
}

// probe asks one server for metrics and readiness.
func probe(ctx context.Context, cl *client.Client, server string) serverStatus {
	st := serverStatus{Server: server}
	var wg sync.WaitGroup
	wg.Go(func() {
		m, err := cl.ServerStatus(ctx, server)
		if err != nil {
			st.Error, st.unreachable = shortError(server, err)
			return
		}
		st.Metrics = m
		st.Status, _ = m["status"].(string)
	})
	wg.Go(func() {
		if err := cl.Readyz(ctx, server); err != nil {
			st.ReadyError, st.readyUnknown = shortError(server, err)
			return
		}
		st.Ready = true
	})
	wg.Wait()
	return st
}

// shortError drops what the row already says (the server address) and
// reports whether the server gave no HTTP answer at all.
func shortError(server string, err error) (msg string, noAnswer bool) {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", ae.Status, ae.Message), false
	}
	return strings.TrimPrefix(err.Error(), server+": "), true
}

func (c *cli) printStatus(rows []serverStatus) error {
	out := make([][]string, len(rows))
	for i, r := range rows {
		status := orDash(r.Status)
		switch {
		case r.unreachable:
			status = "unreachable: " + r.Error
		case r.Error != "":
			status = "error: " + r.Error
		}
		ready := "no"
		switch {
		case r.Ready:
			ready = "yes"
		case r.readyUnknown:
			ready = "-"
		}
		out[i] = []string{r.Server, status, ready,
			metric(r.Metrics, "serviceCount"), metric(r.Metrics, "instanceCount"), metric(r.Metrics, "subscribeCount")}
	}
	return c.table([]string{"SERVER", "STATUS", "READY", "SERVICES", "INSTANCES", "SUBSCRIBERS"}, out)
}

// metric formats one counter, "-" when the server did not send it.
func metric(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok || v == nil {
		return "-"
	}
	return fmt.Sprint(v)
}
