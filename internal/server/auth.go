package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/authcp"
	"github.com/distro-registry/distro/internal/nacos/authapi"
)

// Files in the data directory.
const (
	// legacyAuthFile is the interim file store's (before the auth data
	// moved to Raft): seeded once, then renamed with seededSuffix.
	legacyAuthFile = "auth.json"
	seededSuffix   = ".seeded"
	tokenKeyFile   = "auth-token.key"
	// InitialAdminPasswordFile receives a generated admin password when
	// stderr is not a terminal (mode 0600).
	InitialAdminPasswordFile = "initial-admin-password"
)

// noticeOut receives the one-time notice of a generated admin password
// when noticeTTY says it is a terminal. It is not the log: no log line ever
// carries a password, and in a container or under a service manager stderr
// is the log stream, so there the password goes to a file instead.
var (
	noticeOut io.Writer = os.Stderr
	noticeTTY           = func() bool { return term.IsTerminal(int(os.Stderr.Fd())) }
)

// newAuth builds the Authority when auth is on (nil otherwise) over the
// auth data on the CP protocol (authcp, replicated by Raft), and says which
// way it went in the log. The interim store's auth.json is seeded into it
// once, and an admin is made if none exists: standalone before the node
// serves; in a cluster in the background, because Raft forms only once
// every member is up (waiting here would deadlock a first start).
func (s *Server) newAuth() error {
	cfg := s.cfg
	on, explicit := cfg.Auth.Get()
	why := "default standalone"
	if explicit {
		why = "--auth (flag, DISTRO_AUTH or config file)"
	} else if cfg.Clustered() {
		on, why = true, "default in a cluster"
	}
	if !on {
		lvl := slog.LevelInfo
		if cfg.Clustered() {
			lvl = slog.LevelWarn
		}
		s.log.Log(context.Background(), lvl, "client authentication is OFF: every client may read and write everything", "why", why)
		return nil
	}
	key, keySrc, err := s.tokenKey()
	if err != nil {
		return err
	}
	toks, err := auth.NewTokens(key, cfg.AuthTokenTTL, nil)
	if err != nil {
		return err
	}
	// A damaged interim file stops the start, as it did before.
	legacy := filepath.Join(cfg.DataDir, legacyAuthFile)
	if _, err := os.Stat(legacy); err == nil {
		if s.authSeed, err = auth.ReadStateFile(legacy); err != nil {
			return err
		}
	}
	a, err := auth.New(auth.Config{Store: s.authCP, Tokens: toks, AdminUser: cfg.AuthAdminUser, AdminPassword: cfg.AuthAdminPassword})
	if err != nil {
		return err
	}
	s.auth, s.authStore = a, "raft (the CP store, replicated to every member; in "+raftcpDir(cfg.DataDir)+")"
	if cfg.Clustered() {
		s.loops = append(s.loops, s.prepareAuthLoop)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.RaftWriteTimeout)
		defer cancel()
		if err := s.prepareAuth(ctx); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	attrs := []any{"why", why, "store", s.authStore, "token_key", keySrc, "token_ttl", cfg.AuthTokenTTL}
	if !cfg.Clustered() {
		attrs = append(attrs, "users", len(a.State().Users))
	}
	s.log.Info("client authentication is ON", attrs...)
	return nil
}

// raftcpDir names the Raft directory of a data dir (for messages).
func raftcpDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

// prepareAuth seeds the interim file (once), then makes sure an admin
// exists, handing a generated password to the operator once.
func (s *Server) prepareAuth(ctx context.Context) error {
	if err := s.seedAuthFile(ctx); err != nil {
		return err
	}
	if s.auth.ConfiguredAdmin() != "" {
		return nil
	}
	if s.cluster != nil {
		// A linearizable read, so that a restarted node that has not
		// caught up yet proposes no needless bootstrap.
		if err := s.cp.Barrier(ctx); err != nil {
			return err
		}
	}
	user := s.cfg.AuthAdminUser
	pw, err := s.auth.Bootstrap(ctx, user)
	if err != nil {
		return fmt.Errorf("create the admin: %w", err)
	}
	if pw != "" {
		s.showAdminPassword(user, pw)
	}
	return nil
}

// showAdminPassword hands a generated admin password to the operator: on
// the terminal if stderr is one, else in InitialAdminPasswordFile in the
// data directory, whose path alone is logged.
func (s *Server) showAdminPassword(user, pw string) {
	if noticeTTY() {
		fmt.Fprintf(noticeOut, "\ndistrod: client authentication is on and no admin existed: created user %q with password\n\n    %s\n\n"+
			"It is shown only this once (stored as a bcrypt hash in the replicated auth store). Change it with: distroctl user passwd %s\n\n",
			user, pw, user)
		s.log.Warn("generated the admin password; it was printed on the terminal once", "user", user)
		return
	}
	path := filepath.Join(s.cfg.DataDir, InitialAdminPasswordFile)
	if err := auth.WriteFileAtomic(path, []byte(pw+"\n"), 0o600); err != nil {
		// The admin exists with a password nobody can learn: say how to
		// recover rather than fail the start.
		s.log.Error("generated the admin password but could not write it; restart with DISTRO_AUTH_ADMIN_PASSWORD set to log in",
			"user", user, "path", path, "error", err)
		return
	}
	s.log.Warn("generated the admin password and wrote it to a file readable only by this user (stderr is not a terminal, "+
		"so it was not printed); read it, change the password with distroctl user passwd, then delete the file",
		"user", user, "path", path)
}

// prepareAuthLoop retries prepareAuth until it succeeds (cluster mode: the
// first attempts fail until Raft has formed and elected a leader).
func (s *Server) prepareAuthLoop(ctx context.Context) {
	wait := time.Second
	for {
		err := s.prepareAuth(ctx)
		if err == nil {
			s.log.Info("auth store ready", "users", len(s.auth.State().Users))
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Info("auth store not ready yet (Raft forms once every member is up); retrying", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// seedAuthFile seeds the replicated store from the interim store's
// auth.json, once: the file is renamed auth.json.seeded afterwards, also
// when the replicated store already held auth data (from another node's
// seed, or changes made since) and the file was therefore ignored.
func (s *Server) seedAuthFile(ctx context.Context) error {
	if s.authSeed == nil {
		return nil
	}
	path := filepath.Join(s.cfg.DataDir, legacyAuthFile)
	err := s.authCP.Seed(ctx, s.authSeed)
	switch {
	case err == nil:
		s.log.Info("auth.json seeded into the replicated auth store", "path", path, "users", len(s.authSeed.Users))
	case errors.Is(err, authcp.ErrNotEmpty):
		s.log.Warn("auth.json not seeded: the replicated auth store already holds users, roles or permissions; the file is ignored", "path", path)
	default:
		return err
	}
	s.authSeed = nil
	if err := os.Rename(path, path+seededSuffix); err != nil {
		s.log.Warn("cannot rename the seeded auth.json (it would be offered again, and ignored, at the next start)", "error", err)
	}
	return nil
}

// tokenKey returns the token signing key and where it came from.
func (s *Server) tokenKey() ([]byte, string, error) {
	cfg := s.cfg
	switch {
	case cfg.AuthTokenSecret != "":
		return []byte(cfg.AuthTokenSecret), "--auth-token-secret", nil
	case cfg.Clustered() && cfg.ClusterSecret != "":
		// A separate key derived from the shared secret: every node has it,
		// and a leaked token key does not reveal the cluster secret.
		m := hmac.New(sha256.New, []byte(cfg.ClusterSecret))
		m.Write([]byte("distro client access token key v1"))
		return m.Sum(nil), "derived from --cluster-secret", nil
	case cfg.Clustered():
		return nil, "", errors.New("auth-token-secret: a cluster without --cluster-secret needs --auth-token-secret")
	}
	path := filepath.Join(cfg.DataDir, tokenKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < auth.MinKeyLen {
			return nil, "", fmt.Errorf("auth: %s is not a hex key of at least %d bytes", path, auth.MinKeyLen)
		}
		return k, path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, "", err
	}
	if err := auth.WriteFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("auth: keep the token key: %w", err)
	}
	return k, path + " (generated)", nil
}

// mountAuth adds the auth endpoints and wraps the HTTP handler with the
// auth middleware. Every route registered by then must have an
// authorization rule (or be the console's, which checks its own sessions):
// the middleware would refuse a route without one, so a missing rule is a
// programming error, reported here at start rather than to a user.
func (s *Server) mountAuth() (http.Handler, error) {
	if s.auth == nil {
		authapi.MountDisabled(s.mux)
		return s.mux, nil
	}
	authapi.New(s.auth, s.cfg.MaxBodyBytes, s.authStore, s.log).Mount(s.mux)
	apiMux, _ := s.api.Handler().(*http.ServeMux)
	resolve := func(r *http.Request) string {
		_, p := s.mux.Handler(r)
		if p == "/nacos/" && apiMux != nil {
			_, p = apiMux.Handler(r)
		}
		return p
	}
	var selfAuth func(string) bool
	if s.console != nil {
		selfAuth = s.console.Owns // the console checks its own sessions and permissions
	}
	if u := authapi.Unruled(s.guardedRoutes(selfAuth)); len(u) > 0 {
		return nil, fmt.Errorf("auth: HTTP routes without an authorization rule (internal/nacos/authapi rules): %s", strings.Join(u, ", "))
	}
	return authapi.Middleware(authapi.MiddlewareConfig{Auth: s.auth, Limits: s.cfg.Limits(), Resolve: resolve,
		ProtectMetrics: s.cfg.AuthMetrics, SelfAuthenticated: selfAuth, Logger: s.log}, s.mux), nil
}

// guardedRoutes lists the route patterns the auth middleware decides: those
// of the server's mux, with the "/nacos/" subtree replaced by the Nacos
// API's own patterns, less the routes that authenticate themselves.
func (s *Server) guardedRoutes(selfAuth func(string) bool) []string {
	var out []string
	for _, p := range append(s.mux.Patterns(), s.api.Patterns()...) {
		if p == "/nacos/" || selfAuth != nil && selfAuth(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}
