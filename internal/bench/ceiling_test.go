package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCaptureFileRoundTrip(t *testing.T) {
	for _, c := range [][2]string{{"GET", PathList}, {"PUT", PathBeat}, {"DELETE", "/a b/c%d"}} {
		name := CaptureFile(c[0], c[1])
		if strings.ContainsAny(name, "/ ") {
			t.Errorf("%q is not a plain file name", name)
		}
		m, p, ok := ParseCaptureFile(name)
		if !ok || m != c[0] || p != c[1] {
			t.Errorf("%q → %q %q %v", name, m, p, ok)
		}
	}
	for _, bad := range []string{"x.json", "GET.body", "%zz.body"} {
		if _, _, ok := ParseCaptureFile(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestCeilingReplaysCapturedBodies: a run with CaptureDir saves one body per
// request kind, and a ceiling loaded from that directory answers each kind
// with its bytes.
func TestCeilingReplaysCapturedBodies(t *testing.T) {
	rs := newRegistryServer(t)
	dir := t.TempDir()
	cfg := smallConfig("mixed", rs.addr())
	cfg.CaptureDir = dir
	runOK(t, cfg)
	routes, err := LoadRoutes(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"GET " + PathList, "POST " + PathInstance, "PUT " + PathBeat, "DELETE " + PathInstance} {
		if len(routes[k]) == 0 {
			t.Fatalf("no capture for %s (have %d routes)", k, len(routes))
		}
	}
	ceil := httptest.NewServer(NewCeiling([]byte("ok"), routes))
	defer ceil.Close()
	resp, err := http.Get(ceil.URL + PathList + "?serviceName=whatever")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, routes["GET "+PathList]) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("list replay: %q %q", resp.Header.Get("Content-Type"), body)
	}
	// The same scenario runs against the ceiling without errors.
	cfg = smallConfig("mixed", strings.TrimPrefix(ceil.URL, "http://"))
	res := runOK(t, cfg)
	if res.Ops["query"].BytesPerResponse != float64(len(routes["GET "+PathList])) {
		t.Fatalf("ceiling list bytes %v", res.Ops["query"].BytesPerResponse)
	}
	// Unrouted requests get the default body.
	resp, err = http.Post(ceil.URL+"/other", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" || resp.Header.Get("Content-Length") != "2" {
		t.Fatalf("default: %q", body)
	}
}

func TestCaptureURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, `{"hosts":[]}`)
	}))
	defer srv.Close()
	b, err := CaptureURL(srv.URL + "/x")
	if err != nil || string(b) != `{"hosts":[]}` {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := CaptureURL(srv.URL + "/bad"); err == nil {
		t.Fatal("404 captured")
	}
}

func TestLoadRoutesMissingDir(t *testing.T) {
	if _, err := LoadRoutes(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("want error")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRoutes(dir)
	if err != nil || len(r) != 0 {
		t.Fatalf("%v %v", r, err)
	}
}

func TestDecodePush(t *testing.T) {
	inner := `{"name":"DEFAULT_GROUP@@svc","hosts":[{"ip":"10.0.0.1","port":8080},{"ip":"10.0.0.2","port":81}]}`
	plain := []byte(`{"type":"dom","data":` + jsonString(inner) + `,"lastRefTime":123456789012345}`)
	p, err := DecodePush(plain)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "dom" || p.AckID != "123456789012345" || p.Service != "DEFAULT_GROUP@@svc" || len(p.Hosts) != 2 ||
		p.Hosts[1] != (Endpoint{"10.0.0.2", 81}) {
		t.Fatalf("%+v", p)
	}
	if got := string(p.Ack()); got != `{"type":"push-ack","lastRefTime":"123456789012345","data":""}` {
		t.Fatalf("ack %s", got)
	}
	// Gzip (as servers send packets ≥ 1 KB), a bare service name, and a
	// string ack id.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(`{"type":"dom","data":` + jsonString(`{"name":"svc","hosts":[]}`) + `,"lastRefTime":"42"}`))
	_ = zw.Close()
	p, err = DecodePush(zb.Bytes())
	if err != nil || p.Service != "DEFAULT_GROUP@@svc" || p.AckID != "42" {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = DecodePush([]byte(`{"type":"dump","lastRefTime":7}`))
	if err != nil || string(p.Ack()) != `{"type":"dump-ack","lastRefTime":"7","data":""}` {
		t.Fatalf("dump %+v %v", p, err)
	}
	if _, err := DecodePush([]byte{0x1f, 0x8b, 0}); err == nil {
		t.Fatal("truncated gzip decoded")
	}
	if _, err := DecodePush([]byte(`{"type":"dom","data":"not json"}`)); err == nil {
		t.Fatal("bad inner json decoded")
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func TestProgressRendering(t *testing.T) {
	live := &Live{}
	live.Done.Store(500)
	live.Failed.Store(3)
	line := renderProgress("measure", 5*time.Second, 10*time.Second, 0, live, 10)
	for _, want := range []string{"measure", "█████░░░░░", " 50%", "500 req", "100/s", "err 3"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	// Count-bounded phases use the larger of the two fractions.
	if line := renderProgress("setup", time.Second, 0, 1000, live, 10); !strings.Contains(line, " 50%") {
		t.Errorf("%q", line)
	}
	var buf bytes.Buffer
	p := NewProgress(&buf, true)
	p.period = time.Millisecond
	p.Phase("x", time.Second, 0, live)
	time.Sleep(5 * time.Millisecond)
	p.End()
	p.End() // idempotent
	if !strings.Contains(buf.String(), "\r\x1b[Kx") || !strings.HasSuffix(buf.String(), "\n") {
		t.Fatalf("output %q", buf.String())
	}
	var nilP *Progress
	nilP.Phase("x", 0, 0, nil)
	nilP.End()
	if NewProgress(&buf, false) != nil {
		t.Fatal("disabled progress must be nil")
	}
}
