package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/client"
	"github.com/distro-registry/distro/internal/server"
	"github.com/distro-registry/distro/internal/testutil"
)

// generatedLine is the log line of a node that generated the admin password.
const generatedLine = "generated the admin password and wrote it to a file"

// generatedPassword returns the admin password a node generated into its
// data dir ("" if it has none). A test node's stderr is a pipe, not a
// terminal, so the password is in the file, only its path in the output.
func generatedPassword(t *testing.T, n *testutil.Node, dataDir string) string {
	t.Helper()
	path := filepath.Join(dataDir, server.InitialAdminPasswordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v (%v), want 0600", path, fi.Mode(), err)
	}
	pw := strings.TrimSpace(string(b))
	out := n.Output()
	if len(pw) < 16 || strings.Contains(out, pw) || strings.Contains(out, "created user") {
		t.Fatalf("generated password %q (or a notice of it) in the output:\n%s", pw, out)
	}
	if !strings.Contains(out, generatedLine) || !strings.Contains(out, path) {
		t.Fatalf("the log does not say where the password is:\n%s", out)
	}
	return pw
}

// TestIntegrationAuthRaft: users, roles and permissions are replicated
// through Raft in a 3-node cluster. Every node offers its interim
// auth.json; exactly one seeds the replicated store and every node renames
// its file. No admin password is configured: exactly one node makes the
// admin and prints its password. A user created through one node logs in
// on the others, a permission granted through a third applies everywhere,
// and all of it survives killing every node and restarting them.
func TestIntegrationAuthRaft(t *testing.T) {
	t.Parallel()
	// The interim store's file, as distrod wrote it before: one user.
	h, err := auth.HashPassword("legacy-password", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	legacy := &auth.State{Users: []auth.User{{Name: "legacy", Hash: h, Created: 1}}}
	var dirs []string
	for range 3 {
		d := t.TempDir()
		if err := auth.WriteStateFile(filepath.Join(d, "auth.json"), legacy); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	c := &raftCluster{t: t, conf: filepath.Join(t.TempDir(), "cluster.conf")}
	for range 3 {
		c.ports = append(c.ports, testutil.FreePort(t))
	}
	c.writeConf()
	for i, p := range c.ports {
		args := append(c.args(p), "--auth", "--data-dir", dirs[i], "--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "500ms")
		c.nodes = append(c.nodes, testutil.Start(t, p, args...))
	}
	for _, n := range c.nodes {
		testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, n.Ready)
	}

	// Exactly one node generated a password, into its data dir.
	var adminPW string
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		var found []string
		for i, n := range c.nodes {
			if strings.Contains(n.Output(), generatedLine) {
				found = append(found, generatedPassword(t, n, dirs[i]))
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d nodes generated an admin password", len(found))
		}
		adminPW = found[0]
		return nil
	})
	ctx := context.Background()
	on := func(i int, user, pw string) *client.Client {
		cl, err := client.New([]string{c.nodes[i].Addr()}, client.WithTimeout(5*time.Second), client.WithCredentials(user, pw))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	login := func(i int, user, pw string) error {
		_, err := on(i, user, pw).Login(ctx)
		return err
	}
	// Every node knows the admin and the seeded user (replication is
	// asynchronous for followers: poll), and no node kept its auth.json.
	testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		for i := range c.nodes {
			if err := login(i, "nacos", adminPW); err != nil {
				return fmt.Errorf("admin login on node %d: %v", i, err)
			}
			if err := login(i, "legacy", "legacy-password"); err != nil {
				return fmt.Errorf("seeded user's login on node %d: %v", i, err)
			}
		}
		return nil
	})
	seeded := 0
	for i, n := range c.nodes {
		seeded += strings.Count(n.Output(), "auth.json seeded into the replicated auth store")
		if _, err := os.Stat(filepath.Join(dirs[i], "auth.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("node %d still has auth.json: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(dirs[i], "auth.json.seeded")); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if seeded != 1 {
		t.Fatalf("auth.json seeded %d times, want once", seeded)
	}

	// A user created through node 0 logs in on nodes 1 and 2; a role and a
	// permission granted through node 2 apply on node 0.
	admin0 := on(0, "nacos", adminPW)
	if err := admin0.CreateUser(ctx, "alice", "alice-password"); err != nil {
		t.Fatalf("create a user in a cluster: %v", err)
	}
	var ae *client.APIError
	if err := on(1, "nacos", adminPW).CreateUser(ctx, "alice", "again"); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("the same user through another node: %v", err)
	}
	for _, i := range []int{1, 2} {
		// The write is answered after commit on the node that took it; a
		// follower applies it moments later.
		testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error { return login(i, "alice", "alice-password") })
	}
	admin2 := on(2, "nacos", adminPW)
	if err := admin2.AddRole(ctx, "reader", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := admin2.AddPermission(ctx, "reader", "public:*:*", "r"); err != nil {
		t.Fatal(err)
	}
	readable := func(i int) error {
		_, err := on(i, "alice", "alice-password").ListInstances(ctx, "anything", "", nil, false)
		return err
	}
	testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error { return readable(0) })

	// Kill every node, restart them all: users, roles and permissions are
	// back from the Raft log, and no second admin password is made.
	for _, n := range c.nodes {
		n.Kill()
	}
	for _, n := range c.nodes {
		n.Restart()
	}
	for _, n := range c.nodes {
		testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, n.Ready)
	}
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for i := range c.nodes {
			for _, u := range [][2]string{{"nacos", adminPW}, {"alice", "alice-password"}, {"legacy", "legacy-password"}} {
				if err := login(i, u[0], u[1]); err != nil {
					return fmt.Errorf("%s's login on node %d after the restart: %v", u[0], i, err)
				}
			}
			if err := readable(i); err != nil {
				return fmt.Errorf("alice's permission on node %d after the restart: %v", i, err)
			}
		}
		return nil
	})
	notices, seeds := 0, 0
	for _, n := range c.nodes {
		notices += strings.Count(n.Output(), generatedLine)
		seeds += strings.Count(n.Output(), "auth.json seeded")
	}
	if notices != 1 || seeds != 1 {
		t.Fatalf("after the restart: %d admin notices and %d seeds, want 1 and 1", notices, seeds)
	}
	// Changes still work after the restart (through a follower too).
	li, err := c.leader()
	if err != nil {
		t.Fatal(err)
	}
	if err := on((li+1)%3, "nacos", adminPW).SetPassword(ctx, "alice", "alice-password-2"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error { return login(li, "alice", "alice-password-2") })
}

// TestIntegrationAuthSeedStandalone: a standalone node upgraded from the
// interim file store seeds its auth.json once, before it serves: the
// file's admin logs in (no password is generated), the file is renamed,
// and a change made afterwards survives a restart (the file is not
// offered again).
func TestIntegrationAuthSeedStandalone(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("old-admin-password", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := &auth.State{Users: []auth.User{{Name: "root", Hash: h, Created: 1}}, Roles: []auth.RoleBinding{{Role: auth.AdminRole, Username: "root"}}}
	if err := auth.WriteStateFile(filepath.Join(dir, "auth.json"), st); err != nil {
		t.Fatal(err)
	}
	n := testutil.Start(t, testutil.FreePort(t), "--auth", "--data-dir", dir)
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	ctx := context.Background()
	root, err := client.New([]string{n.Addr()}, client.WithTimeout(5*time.Second), client.WithCredentials("root", "old-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := root.Login(ctx); err != nil || !s.GlobalAdmin {
		t.Fatalf("the seeded admin: %+v %v", s, err)
	}
	if strings.Contains(n.Output(), "generated the admin password") || generatedPassword(t, n, dir) != "" {
		t.Fatal("a password was generated although the seeded store has an admin")
	}
	if _, err := os.Stat(filepath.Join(dir, "auth.json.seeded")); err != nil {
		t.Fatal(err)
	}
	if err := root.CreateUser(ctx, "bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	n.Restart()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	bob, _ := client.New([]string{n.Addr()}, client.WithTimeout(5*time.Second), client.WithCredentials("bob", "bob-password"))
	if _, err := bob.Login(ctx); err != nil {
		t.Fatalf("a user created after the seed, after a restart: %v", err)
	}
	if c := strings.Count(n.Output(), "auth.json seeded"); c != 1 {
		t.Fatalf("seeded %d times", c)
	}
}

// TestIntegrationAuthNamespaces: with auth on, the Nacos namespace API
// serves the admin (create, list, rename, delete) and any signed-in user
// (list), and refuses changes by a user who is not a global admin and
// requests without credentials.
func TestIntegrationAuthNamespaces(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t), "--auth", "--auth-admin-password", "admin-password", "--namespace-validation")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	ctx := context.Background()
	admin, _ := client.New([]string{n.Addr()}, client.WithTimeout(5*time.Second), client.WithCredentials("nacos", "admin-password"))
	if err := admin.CreateUser(ctx, "dev", "dev-password"); err != nil {
		t.Fatal(err)
	}
	token := func(c *client.Client) string {
		s, err := c.Login(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return url.QueryEscape(s.AccessToken)
	}
	dev, _ := client.New([]string{n.Addr()}, client.WithTimeout(5*time.Second), client.WithCredentials("dev", "dev-password"))
	adminTok, devTok := token(admin), token(dev)
	base := n.URL() + "/nacos/v1/console/namespaces"
	steps := []struct {
		name, method, target string
		form                 url.Values
		status               int
		want                 string
	}{
		{"no credentials", "GET", base, nil, 403, "user not found!"},
		{"admin creates", "POST", base + "?accessToken=" + adminTok, url.Values{"customNamespaceId": {"team-a"}, "namespaceName": {"Team A"}}, 200, "true"},
		{"user lists", "GET", base + "?accessToken=" + devTok, nil, 200, `"namespace":"team-a"`},
		{"user cannot create", "POST", base + "?accessToken=" + devTok, url.Values{"customNamespaceId": {"mine"}, "namespaceName": {"Mine"}}, 403, "authorization failed!"},
		{"user cannot rename", "PUT", base + "?accessToken=" + devTok, url.Values{"namespace": {"team-a"}, "namespaceShowName": {"Mine"}}, 403, "authorization failed!"},
		{"user cannot delete", "DELETE", base + "?namespaceId=team-a&accessToken=" + devTok, nil, 403, "authorization failed!"},
		{"admin renames", "PUT", base + "?accessToken=" + adminTok, url.Values{"namespace": {"team-a"}, "namespaceShowName": {"Team A2"}}, 200, "true"},
		{"admin reads one", "GET", base + "?show=all&namespaceId=team-a&accessToken=" + adminTok, nil, 200, `"namespaceShowName":"Team A2"`},
		{"admin deletes", "DELETE", base + "?namespaceId=team-a&accessToken=" + adminTok, nil, 200, "true"},
	}
	for _, s := range steps {
		if code, body := send(t, s.method, s.target, s.form); code != s.status || !strings.Contains(body, s.want) {
			t.Fatalf("%s: %d %s, want %d %q", s.name, code, body, s.status, s.want)
		}
	}
	if code, body := send(t, "GET", base+"?accessToken="+adminTok, nil); code != 200 || strings.Contains(body, "team-a") {
		t.Fatalf("after the delete: %d %s", code, body)
	}
	if code, _ := send(t, "GET", base+"?checkNamespaceIdExist=true&customNamespaceId=mine&accessToken="+devTok, nil); code != 200 {
		t.Fatalf("check of an id: %d", code)
	}
}
