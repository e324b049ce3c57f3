package member

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeAddressServer is an in-memory http.RoundTripper, so that polling can be
// tested inside a synctest bubble without sockets.
type fakeAddressServer struct {
	mu       sync.Mutex
	status   int
	body     string
	err      error
	requests int
	downFor  int // the first downFor requests fail as if nothing listened
}

func (f *fakeAddressServer) set(status int, body string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body, f.err = status, body, err
}

func (f *fakeAddressServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeAddressServer) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.requests <= f.downFor {
		return nil, errors.New("dial tcp: connect: connection refused")
	}
	if f.err != nil {
		return nil, f.err
	}
	return &http.Response{
		StatusCode: f.status,
		Status:     http.StatusText(f.status),
		Body:       io.NopCloser(strings.NewReader(f.body)),
		Request:    r,
	}, nil
}

// listRecorder is an onChange for synctest bubbles: the test reads it after
// synctest.Wait.
type listRecorder struct {
	mu    sync.Mutex
	lists [][]string
}

func (r *listRecorder) onChange(l []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lists = append(r.lists, l)
}

func (r *listRecorder) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lists)
}

const testURL = "http://addr.example:8080/nacos/serverlist"

func TestAddressServerPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newTestLogger(t)
		srv := &fakeAddressServer{}
		srv.set(200, "10.0.0.2\n10.0.0.1:8848\n", nil)
		l := AddressServer(testURL, 0, DefaultPort, &http.Client{Transport: srv}, log)
		rec, cancel := startRecording(t, l, "address-server")
		want := [][]string{{"10.0.0.1:8848", "10.0.0.2:8848"}}
		check := func(step string) {
			t.Helper()
			if got := rec.all(); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("%s: lists %q, want %q", step, got, want)
			}
		}
		check("start")

		advance(5 * time.Second)
		if n := srv.count(); n != 2 {
			t.Fatalf("%d requests after one interval, want 2", n)
		}
		check("unchanged list")

		srv.set(200, "10.0.0.1, 10.0.0.3 # scaled\n", nil)
		advance(5 * time.Second)
		want = append(want, []string{"10.0.0.1:8848", "10.0.0.3:8848"})
		check("changed list")

		// Every kind of failure keeps the last good list and is counted.
		failures := []struct {
			status int
			body   string
			err    error
		}{
			{0, "", errors.New("dial tcp: connection refused")},
			{503, "busy", nil},
			{200, "10.0.0.1:notaport\n", nil},
			{200, "# nothing\n", nil},
			{200, strings.Repeat("#", addrServerMaxBody+1), nil},
		}
		for i, f := range failures {
			srv.set(f.status, f.body, f.err)
			advance(5 * time.Second)
			check("failure")
			if n := l.ConsecutiveFailures(); n != i+1 {
				t.Fatalf("consecutive failures %d, want %d", n, i+1)
			}
		}
		if len(logs.lines("keeping the last good list")) != len(failures) {
			t.Fatalf("want one log line per failed poll")
		}

		srv.set(200, "10.0.0.1\n10.0.0.3\n10.0.0.4\n", nil)
		advance(5 * time.Second)
		want = append(want, []string{"10.0.0.1:8848", "10.0.0.3:8848", "10.0.0.4:8848"})
		check("recovered")
		if l.ConsecutiveFailures() != 0 || l.TotalFailures() != uint64(len(failures)) {
			t.Fatalf("after recovery: consecutive %d total %d", l.ConsecutiveFailures(), l.TotalFailures())
		}

		cancel()
		n := srv.count()
		advance(time.Minute)
		if srv.count() != n {
			t.Fatal("still polling after cancel")
		}
	})
}

func TestAddressServerStartup(t *testing.T) {
	t.Run("retries then succeeds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &fakeAddressServer{downFor: 3}
			srv.set(200, "10.0.0.1\n", nil)
			l := AddressServer(testURL, time.Second, DefaultPort, &http.Client{Transport: srv}, nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			rec := &listRecorder{}
			if err := l.Start(ctx, rec.onChange); err != nil {
				t.Fatal(err)
			}
			if n := srv.count(); n != 4 {
				t.Fatalf("%d attempts, want 4", n)
			}
			if got := rec.all(); len(got) != 1 || !slices.Equal(got[0], []string{"10.0.0.1:8848"}) {
				t.Fatalf("lists %q", got)
			}
		})
	})
	t.Run("gives up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &fakeAddressServer{}
			srv.set(500, "", nil)
			l := AddressServer(testURL, time.Second, DefaultPort, &http.Client{Transport: srv}, nil)
			start := time.Now()
			called := false
			err := l.Start(t.Context(), func([]string) { called = true })
			if err == nil || called {
				t.Fatalf("Start = %v, called %v; want an error", err, called)
			}
			if n := srv.count(); n != addrServerStartupAttempts {
				t.Fatalf("%d attempts, want %d", n, addrServerStartupAttempts)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("gave up after %v; startup retries should be quick", d)
			}
			synctest.Wait()
			if srv.count() != addrServerStartupAttempts {
				t.Fatal("polling continued after a failed Start")
			}
		})
	})
	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{"", "addr.example:8080/serverlist", "ftp://x/y", "http:///nohost"} {
			if err := AddressServer(u, 0, DefaultPort, nil, nil).Start(t.Context(), func([]string) {}); err == nil {
				t.Errorf("URL %q accepted", u)
			}
		}
	})
}

func TestAddressServerHandler(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.conf")
	h := AddressServerHandler(path)
	get := func(method string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, AddressServerPath, nil))
		return w
	}

	if w := get("GET"); w.Code != 500 {
		t.Fatalf("missing file: status %d", w.Code)
	}
	writeFile(t, path, "# cluster\n10.0.0.2, Node-A:9000\n[::1]\n10.0.0.2\n")
	w := get("GET")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	// Normalised, sorted, de-duplicated; entries keep "no port" so each
	// client applies its own default.
	if got, want := w.Body.String(), "10.0.0.2\n[::1]\nnode-a:9000\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	// A client with another default port reads it with that port.
	if got, _ := ParseMembers(w.Body.String(), 7000); !slices.Equal(got, []string{"10.0.0.2:7000", "[::1]:7000", "node-a:9000"}) {
		t.Fatalf("client view %q", got)
	}
	writeFile(t, path, "10.0.0.2\ngarbage!\n")
	if w := get("GET"); w.Code != 500 || !strings.Contains(w.Body.String(), "line 2") {
		t.Fatalf("invalid file: status %d body %q", w.Code, w.Body.String())
	}
	if w := get("POST"); w.Code != 405 {
		t.Fatalf("POST: status %d", w.Code)
	}
}

// TestAddressServerEndToEnd runs the real server on loopback and a lookup
// polling it over HTTP.
func TestAddressServerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "members")
	writeFile(t, path, "127.0.0.1:8848\n127.0.0.1:8858\n")
	log, _ := newTestLogger(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveAddressServer(ctx, ln, path, log) }()

	url := "http://" + ln.Addr().String() + AddressServerPath
	l := AddressServer(url, 20*time.Millisecond, DefaultPort, nil, log)
	rec := make(changeRecorder, 10)
	lctx, lcancel := context.WithCancel(t.Context())
	defer lcancel()
	if err := l.Start(lctx, rec.onChange); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "127.0.0.1:8848", "127.0.0.1:8858")
	writeFile(t, path, "127.0.0.1:8848\n127.0.0.1:8858\n127.0.0.1:8868\n")
	rec.expect(t, "127.0.0.1:8848", "127.0.0.1:8858", "127.0.0.1:8868")

	resp, err := http.Get("http://" + ln.Addr().String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown path: status %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestServeAddressServerErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "10.0.0.1:0\n")
	if err := ServeAddressServer(t.Context(), "127.0.0.1:0", bad, nil); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("invalid file: %v", err)
	}
	if err := ServeAddressServer(t.Context(), "127.0.0.1:0", filepath.Join(dir, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	good := filepath.Join(dir, "good")
	writeFile(t, good, "10.0.0.1\n")
	if err := ServeAddressServer(t.Context(), "127.0.0.1:notaport", good, nil); err == nil {
		t.Fatal("bad listen address accepted")
	}
}
