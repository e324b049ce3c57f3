package member

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
)

// changeRecorder is an onChange that hands lists to the test over a channel.
type changeRecorder chan []string

func (c changeRecorder) onChange(l []string) { c <- l }

// next waits for the next list, failing after a generous deadline.
func (c changeRecorder) next(t *testing.T) []string {
	t.Helper()
	select {
	case l := <-c:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no member list change within 10 s")
		return nil
	}
}

// expect waits for the next list and checks it.
func (c changeRecorder) expect(t *testing.T, want ...string) {
	t.Helper()
	if got := c.next(t); !slices.Equal(got, want) {
		t.Fatalf("member list %q, want %q", got, want)
	}
}

func TestFixedLookups(t *testing.T) {
	rec := make(changeRecorder, 1)
	s := Standalone("10.0.0.1:8848")
	if s.Name() != "standalone" {
		t.Fatalf("name %q", s.Name())
	}
	if err := s.Start(t.Context(), rec.onChange); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "10.0.0.1:8848")

	in := []string{"10.0.0.2:8848", "10.0.0.1:8848", "10.0.0.2:8848"}
	st := Static(in)
	in[0] = "mutated"
	if st.Name() != "static" {
		t.Fatalf("name %q", st.Name())
	}
	if err := st.Start(t.Context(), rec.onChange); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "10.0.0.1:8848", "10.0.0.2:8848")

	if err := Static(nil).Start(t.Context(), rec.onChange); err == nil {
		t.Fatal("empty static list accepted")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile swaps content in by rename, as editors and config tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// These tests use real fsnotify and real time: inotify's reader blocks in a
// system call, which testing/synctest cannot see through. Every wait is a
// channel receive with a deadline.
func TestFileLookup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.conf")
	writeFile(t, path, "# nodes\n10.0.0.2\n10.0.0.1:8848\n")
	log, logs := newTestLogger(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	l := File(path, DefaultPort, log)
	if l.Name() != "file" {
		t.Fatalf("name %q", l.Name())
	}
	rec := make(changeRecorder, 10)
	if err := l.Start(ctx, rec.onChange); err != nil {
		t.Fatal(err)
	}
	// The initial list is delivered before Start returns.
	select {
	case got := <-rec:
		if !slices.Equal(got, []string{"10.0.0.1:8848", "10.0.0.2:8848"}) {
			t.Fatalf("initial list %q", got)
		}
	default:
		t.Fatal("Start returned before delivering the initial list")
	}

	t.Run("in-place write", func(t *testing.T) {
		writeFile(t, path, "10.0.0.1,10.0.0.2,10.0.0.3\n")
		rec.expect(t, "10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848")
	})
	t.Run("replace by rename", func(t *testing.T) {
		replaceFile(t, path, "10.0.0.1\n10.0.0.3\n")
		rec.expect(t, "10.0.0.1:8848", "10.0.0.3:8848")
	})
	const rejected = "keeping the last good list"
	t.Run("invalid content keeps last good list", func(t *testing.T) {
		writeFile(t, path, "10.0.0.1\n10.0.0.3:notaport\n")
		logs.waitForLines(t, 1, rejected, "line 2")
		replaceFile(t, path, "10.0.0.1\n10.0.0.4\n")
		// The next list delivered is the next valid one.
		rec.expect(t, "10.0.0.1:8848", "10.0.0.4:8848")
	})
	t.Run("removed file keeps last good list", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		logs.waitForLines(t, 2, rejected)
		writeFile(t, filepath.Join(dir, "unrelated.txt"), "x")
		writeFile(t, path, "10.0.0.5\n")
		rec.expect(t, "10.0.0.5:8848")
	})
	t.Run("empty file keeps last good list", func(t *testing.T) {
		writeFile(t, path, "# all commented out\n")
		logs.waitForLines(t, 1, rejected, "no members listed")
		writeFile(t, path, "10.0.0.5\n10.0.0.6\n")
		rec.expect(t, "10.0.0.5:8848", "10.0.0.6:8848")
	})
	t.Run("same list no call", func(t *testing.T) {
		writeFile(t, path, "10.0.0.6 # same list, reordered\n10.0.0.5\n")
		logs.waitForLines(t, 1, "list unchanged")
		writeFile(t, path, "10.0.0.7\n")
		rec.expect(t, "10.0.0.7:8848")
	})
	t.Run("symlink to another directory", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "real.conf")
		writeFile(t, target, "10.0.2.1\n")
		link := filepath.Join(t.TempDir(), "cluster.conf")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		srec := make(changeRecorder, 10)
		if err := File(link, DefaultPort, log).Start(ctx, srec.onChange); err != nil {
			t.Fatal(err)
		}
		srec.expect(t, "10.0.2.1:8848")
		writeFile(t, target, "10.0.2.2\n")
		srec.expect(t, "10.0.2.2:8848")
	})
	t.Run("kubernetes configmap swap", func(t *testing.T) {
		// cluster.conf -> ..data/cluster.conf; ..data -> ts1, then swapped to ts2.
		kdir := t.TempDir()
		for ts, content := range map[string]string{"ts1": "10.0.1.1\n", "ts2": "10.0.1.2\n"} {
			if err := os.Mkdir(filepath.Join(kdir, ts), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(kdir, ts, "cluster.conf"), content)
		}
		if err := os.Symlink("ts1", filepath.Join(kdir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..data/cluster.conf", filepath.Join(kdir, "cluster.conf")); err != nil {
			t.Fatal(err)
		}
		krec := make(changeRecorder, 10)
		if err := File(filepath.Join(kdir, "cluster.conf"), DefaultPort, log).Start(ctx, krec.onChange); err != nil {
			t.Fatal(err)
		}
		krec.expect(t, "10.0.1.1:8848")
		if err := os.Symlink("ts2", filepath.Join(kdir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(kdir, "..data_tmp"), filepath.Join(kdir, "..data")); err != nil {
			t.Fatal(err)
		}
		krec.expect(t, "10.0.1.2:8848")
	})
}

func TestFileLookupStartErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{
		"missing":   "",
		"invalid":   "10.0.0.1:99999\n",
		"empty":     "# nothing\n",
		"bare ipv6": "::1\n",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".conf")
			if content != "" {
				writeFile(t, path, content)
			}
			called := false
			err := File(path, DefaultPort, nil).Start(t.Context(), func([]string) { called = true })
			if err == nil || called {
				t.Fatalf("Start = %v, onChange called %v; want an error and no call", err, called)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		err := File(filepath.Join(dir, "nope", "cluster.conf"), DefaultPort, nil).Start(t.Context(), func([]string) {})
		if err == nil {
			t.Fatal("missing directory accepted")
		}
	})
}

func TestForwarder(t *testing.T) {
	var f Forwarder
	if f.Latest() != nil {
		t.Fatal("latest before any list")
	}
	if err := Static([]string{self, peerB}).Start(t.Context(), f.OnChange); err != nil {
		t.Fatal(err)
	}
	if got := f.Latest(); !slices.Equal(got, []string{self, peerB}) {
		t.Fatalf("latest %q", got)
	}
	f.OnChange([]string{self, peerB, peerC}) // arrives before the Health exists
	h := NewHealth(self, Config{}, newFakeProber(), clock.Real{}, nil)
	f.Attach(h)
	wantStates(t, h, map[string]State{self: StateUp, peerB: StateSuspicious, peerC: StateSuspicious})
	f.OnChange([]string{self, peerC})
	wantStates(t, h, map[string]State{self: StateUp, peerC: StateSuspicious})
}
