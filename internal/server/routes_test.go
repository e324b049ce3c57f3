package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/distro-registry/distro/internal/config"
	"github.com/distro-registry/distro/internal/nacos/authapi"
	"github.com/distro-registry/distro/internal/testutil"
)

// TestEveryRouteHasARule builds a node with auth on and every feature that
// registers HTTP routes (console with edits, UDP push, health checks, the
// namespace API), and walks the routes its muxes actually registered: New
// refuses to build a node with a route the auth middleware has no rule for,
// and a route added later is reported by the same check.
func TestEveryRouteHasARule(t *testing.T) {
	cfg := config.Default()
	cfg.Port, cfg.Bind, cfg.DataDir = testutil.FreePort(t), "127.0.0.1", t.TempDir()
	cfg.Auth, cfg.AuthAdminPassword = config.Toggle("true"), "admin-password"
	cfg.Console, cfg.ConsoleEdit, cfg.UDPPush, cfg.HealthChecks, cfg.NamespaceValidation = true, true, true, true, true
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("a node with auth on: %v", err)
	}
	defer func() {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Run(ctx)
	}()
	routes := s.guardedRoutes(s.console.Owns)
	for _, want := range []string{"POST /nacos/v1/ns/instance", "GET /nacos/v1/console/namespaces", "DELETE /nacos/v1/console/namespaces",
		"POST /nacos/v1/auth/users", "GET /distro/admin/connections", "GET /readyz"} {
		if !slices.Contains(routes, want) {
			t.Errorf("route %q not among the registered routes %v", want, routes)
		}
	}
	if len(routes) < 45 {
		t.Fatalf("only %d routes found: %v", len(routes), routes)
	}
	if u := authapi.Unruled(routes); len(u) != 0 {
		t.Fatalf("routes without a rule: %v", u)
	}
	// A route registered without a rule is reported.
	s.mux.HandleFunc("GET /distro/admin/new-thing", func(http.ResponseWriter, *http.Request) {})
	if u := authapi.Unruled(s.guardedRoutes(s.console.Owns)); !slices.Equal(u, []string{"GET /distro/admin/new-thing"}) {
		t.Fatalf("unruled = %v, want the new route", u)
	}
}
