package main

import (
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/testutil"
)

// TestAuthCommands runs the user, role and permission commands and the
// credential flags against a real distrod with auth on.
func TestAuthCommands(t *testing.T) {
	n := testutil.Start(t, testutil.FreePort(t), "--auth", "--auth-admin-password", "admin-password-1")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	srv := "--server=" + n.Addr()
	admin := map[string]string{envUsername: "nacos", envPassword: "admin-password-1"}
	must := func(env map[string]string, args ...string) string {
		t.Helper()
		r := run(t, env, 1, append([]string{srv}, args...)...)
		if r.code != 0 {
			t.Fatalf("distroctl %s: %d %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	fails := func(env map[string]string, want string, args ...string) {
		t.Helper()
		r := run(t, env, 1, append([]string{srv}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("distroctl %s: %d %q, want a failure mentioning %q", strings.Join(args, " "), r.code, r.stderr, want)
		}
	}
	must(admin, "user", "add", "app", "--new-password", "app-password")
	must(admin, "role", "add", "readers", "app")
	if out := must(admin, "permission", "add", "readers", "public:*:*", "r"); !strings.Contains(out, "granted r on public:*:* for readers") {
		t.Fatalf("permission add: %q", out)
	}
	if out := must(admin, "user", "list"); !strings.Contains(out, "app") || !strings.Contains(out, "nacos") {
		t.Fatalf("user list: %q", out)
	}
	if out := must(admin, "permission", "list", "--json"); !strings.Contains(out, `"resource": "public:*:*"`) {
		t.Fatalf("permission list: %q", out)
	}
	if out := must(admin, "role", "list", "--user", "app"); !strings.Contains(out, "readers") {
		t.Fatalf("role list: %q", out)
	}
	must(admin, "instance", "register", "--service", "orders", "--ip", "10.0.0.7", "--port", "8080")
	if out := must(admin, "status"); !strings.Contains(out, "UP") {
		t.Fatalf("status: %q", out)
	}
	if out := must(admin, "members"); !strings.Contains(out, n.Addr()) {
		t.Fatalf("members: %q", out)
	}

	app := []string{"--username", "app", "--password", "app-password"}
	if out := must(nil, append(app, "instance", "list", "--service", "orders")...); !strings.Contains(out, "10.0.0.7") {
		t.Fatalf("read-only list: %q", out)
	}
	fails(nil, "authorization failed!", append(app, "instance", "register", "--service", "orders", "--ip", "10.0.0.8", "--port", "80")...)
	fails(nil, "user not found!", "instance", "list", "--service", "orders")
	fails(map[string]string{envUsername: "nacos", envPassword: "wrong"}, "user not found!", "instance", "list", "--service", "orders")
	fails(nil, "authorization failed!", append(app, "user", "list")...)
	must(nil, append(app, "user", "passwd", "app", "--new-password", "app-password-2")...)
	must(nil, "--username", "app", "--password", "app-password-2", "instance", "list", "--service", "orders")
	must(admin, "permission", "delete", "readers", "public:*:*", "r")
	must(admin, "role", "delete", "readers")
	must(admin, "user", "delete", "app")
	if out := must(admin, "user", "list"); strings.Contains(out, "app") {
		t.Fatalf("user list after delete: %q", out)
	}
}
