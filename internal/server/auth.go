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

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/nacos/authapi"
)

// Files in the data directory.
const (
	authStateFile = "auth.json"
	tokenKeyFile  = "auth-token.key"
)

// noticeOut receives the one-time notice of a generated admin password. It
// is not the log: no log line ever carries a password.
var noticeOut io.Writer = os.Stderr

// newAuth builds the Authority when auth is on (nil otherwise) and says
// which way it went in the log.
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
	// Until the CP (Raft) store replicates users, a cluster node reads its
	// auth.json and takes no changes: see docs/operations.md.
	readOnly := cfg.Clustered()
	st, err := auth.OpenFileStore(filepath.Join(cfg.DataDir, authStateFile), readOnly)
	if err != nil {
		return err
	}
	if readOnly && cfg.AuthAdminPassword == "" && !st.State().HasAdmin() {
		return errors.New("auth in a cluster needs the same admin on every node: set --auth-admin-password " +
			"(or DISTRO_AUTH_ADMIN_PASSWORD), or copy one auth.json with an admin into every node's --data-dir")
	}
	a, err := auth.New(auth.Config{Store: st, Tokens: toks, AdminUser: cfg.AuthAdminUser, AdminPassword: cfg.AuthAdminPassword})
	if err != nil {
		return err
	}
	storeInfo := "file " + filepath.Join(cfg.DataDir, authStateFile)
	if readOnly {
		storeInfo += " (read-only in a cluster until the CP store lands)"
	}
	pw, err := a.Bootstrap(context.Background(), cfg.AuthAdminUser)
	if err != nil {
		return fmt.Errorf("auth: create the admin: %w", err)
	}
	if pw != "" {
		fmt.Fprintf(noticeOut, "\ndistrod: client authentication is on and no admin existed: created user %q with password\n\n    %s\n\n"+
			"It is shown only this once (stored as a bcrypt hash in %s). Change it with: distroctl user passwd %s\n\n",
			cfg.AuthAdminUser, pw, filepath.Join(cfg.DataDir, authStateFile), cfg.AuthAdminUser)
		s.log.Warn("generated the admin password; it was printed on stderr once", "user", cfg.AuthAdminUser)
	}
	s.auth, s.authStore = a, storeInfo
	s.log.Info("client authentication is ON", "why", why, "store", storeInfo, "token_key", keySrc,
		"token_ttl", cfg.AuthTokenTTL, "users", len(a.State().Users))
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
// auth middleware.
func (s *Server) mountAuth() http.Handler {
	if s.auth == nil {
		authapi.MountDisabled(s.mux)
		return s.mux
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
	return authapi.Middleware(authapi.MiddlewareConfig{Auth: s.auth, Limits: s.cfg.Limits(), Resolve: resolve,
		ProtectMetrics: s.cfg.AuthMetrics, SelfAuthenticated: selfAuth, Logger: s.log}, s.mux)
}
