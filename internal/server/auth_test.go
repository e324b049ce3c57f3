package server

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/config"
)

// TestAdminPasswordNotice: a generated admin password is printed when
// stderr is a terminal; otherwise (a container's or a service manager's
// log stream) it goes to a 0600 file in the data dir, and only the file's
// path is logged.
func TestAdminPasswordNotice(t *testing.T) {
	oldOut, oldTTY := noticeOut, noticeTTY
	defer func() { noticeOut, noticeTTY = oldOut, oldTTY }()
	const pw = "Generated-Password-0123456789"
	for _, tty := range []bool{true, false} {
		var out, logs bytes.Buffer
		noticeOut, noticeTTY = &out, func() bool { return tty }
		s := &Server{cfg: config.Config{DataDir: t.TempDir()}, log: slog.New(slog.NewTextHandler(&logs, nil))}
		s.showAdminPassword("nacos", pw)
		path := filepath.Join(s.cfg.DataDir, InitialAdminPasswordFile)
		b, err := os.ReadFile(path)
		if strings.Contains(logs.String(), pw) {
			t.Fatalf("tty %v: the log holds the password: %s", tty, logs.String())
		}
		if tty {
			if !strings.Contains(out.String(), pw) || err == nil {
				t.Fatalf("on a terminal: printed %q, file %v", out.String(), err)
			}
			continue
		}
		if out.Len() != 0 {
			t.Fatalf("not a terminal, but printed: %q", out.String())
		}
		fi, serr := os.Stat(path)
		if err != nil || string(b) != pw+"\n" || serr != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("password file: %q %v, mode %v", b, err, fi.Mode())
		}
		if !strings.Contains(logs.String(), path) {
			t.Fatalf("the log does not name the file: %s", logs.String())
		}
	}
}
