package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/bench"
)

// fakeNacos is a minimal Nacos v1 naming server: writes answer "ok", beats
// the beat JSON, lists a fixed body.
func fakeNacos(t *testing.T) (*httptest.Server, *int64) {
	t.Helper()
	var mu sync.Mutex
	var writes int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == bench.PathList:
			_, _ = io.WriteString(w, `{"name":"DEFAULT_GROUP@@x","hosts":[{"ip":"10.0.0.1","port":8080}]}`)
		case r.URL.Path == bench.PathBeat:
			_, _ = io.WriteString(w, `{"clientBeatInterval":5000,"code":10200}`)
		case r.URL.Path == bench.PathInstance:
			mu.Lock()
			writes++
			mu.Unlock()
			_, _ = io.WriteString(w, "ok")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &writes
}

func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := newCLI(&out, &errb).run(ctx, args)
	return code, out.String(), errb.String()
}

func TestRunQueryWritesTableAndJSON(t *testing.T) {
	srv, _ := fakeNacos(t)
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "r.json")
	code, out, errs := run(t, t.Context(), "--target", strings.TrimPrefix(srv.URL, "http://"), "--scenario", "query",
		"--duration", "150ms", "--warmup", "10ms", "--concurrency", "4", "--services", "3", "--instances-per-service", "2",
		"--json", jsonPath, "--tag", "server=fake", "--tag", "rep=1", "--server-pid", strconv.Itoa(os.Getpid()), "--progress=never")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"scenario", "query (http-v1)", "throughput", "p99.9", "server cpu", "req per CPU-second"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var r bench.Result
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "run" || r.Requests == 0 || r.Errors != 0 || r.Tags["server"] != "fake" || r.Tags["rep"] != "1" || r.Server == nil {
		t.Fatalf("result %+v", r)
	}
	if errs != "" {
		t.Errorf("stderr without --progress: %q", errs)
	}
}

func TestRunProgressAlwaysDrawsOnStderr(t *testing.T) {
	srv, _ := fakeNacos(t)
	code, _, errs := run(t, t.Context(), "--target", strings.TrimPrefix(srv.URL, "http://"), "--scenario", "register",
		"--duration", "300ms", "--warmup", "0s", "--concurrency", "2", "--progress", "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "measure") || !strings.Contains(errs, "req") {
		t.Fatalf("no progress bar on stderr: %q", errs)
	}
}

func TestRunConvergeDefaults(t *testing.T) {
	srv, _ := fakeNacos(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	// Two "nodes" that are the same static fake, which never lists the
	// sample instance: every sample times out and is counted as not_visible.
	code, out, errs := run(t, t.Context(), "--target", addr+","+addr, "--scenario", "converge", "--max-requests", "5",
		"--rate", "200", "--warmup", "0s", "--visible-timeout", "30ms", "--progress=never")
	if code != 0 || !strings.Contains(out, "not_visible=5") || !strings.Contains(out, "open loop, 200 req/s") {
		t.Fatalf("exit %d %s\n%s", code, errs, out)
	}
	code, out, errs = run(t, t.Context(), "--target", addr, "--scenario", "converge", "--progress=never")
	if code == 0 || !strings.Contains(errs, "at least two targets") {
		t.Fatalf("single-target converge: exit %d %q %q", code, out, errs)
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "query"},
		{"--target", "127.0.0.1:1", "--scenario", "nope"},
		{"--target", "127.0.0.1:1", "--tag", "novalue"},
		{"--target", "127.0.0.1:1", "--progress=sometimes"},
		{"--target", "127.0.0.1:1", "--json", "/nonexistent/dir/x.json"},
		{"stray-arg"},
	} {
		code, _, errs := run(t, t.Context(), args...)
		if code != 1 || !strings.HasPrefix(errs, "distrobench: ") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d stderr %q", args, code, errs)
		}
	}
	// A server that refuses every connection: the run completes with
	// errors counted by kind.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	code, out, _ := run(t, t.Context(), "--target", addr, "--scenario", "register", "--duration", "50ms", "--warmup", "0s",
		"--concurrency", "1", "--progress=never")
	if code != 0 || !strings.Contains(out, "conn_refused=") {
		t.Fatalf("refused: exit %d\n%s", code, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestCeilingCommand(t *testing.T) {
	dir := t.TempDir()
	body := filepath.Join(dir, "list.json")
	if err := os.WriteFile(body, []byte(`{"hosts":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		done <- newCLI(io.Discard, &errb).run(ctx, []string{"ceiling", "--port", strconv.Itoa(port),
			"--route", "GET " + bench.PathList + "=" + body})
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	var resp *http.Response
	var err error
	for range 100 {
		if resp, err = http.Get(url + bench.PathList); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"hosts":[]}` {
		t.Fatalf("routed body %q", b)
	}
	resp, err = http.Post(url+bench.PathInstance, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("default body %q", b)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("ceiling exit %d: %s", code, errb.String())
	}
	if code, _, _ := run(t, t.Context(), "ceiling", "--body", body, "--capture", "http://x"); code != 1 {
		t.Fatal("--body with --capture accepted")
	}
	if code, _, _ := run(t, t.Context(), "ceiling", "--route", "bad"); code != 1 {
		t.Fatal("bad --route accepted")
	}
}

func TestFillReportSummaryChart(t *testing.T) {
	srv, writes := fakeNacos(t)
	dir := t.TempDir()
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, out, errs := run(t, t.Context(), "fill", "--target", addr, "--instances", "50", "--concurrency", "4",
		"--metrics-url", "none", "--settle", "100ms", "--server-pid", strconv.Itoa(os.Getpid()), "--json", filepath.Join(dir, "mem.json"), "--progress=never")
	if code != 0 || *writes != 50 || !strings.Contains(out, "registered 50 of 50") {
		t.Fatalf("fill exit %d writes %d: %s %s", code, *writes, out, errs)
	}
	for rep := range 3 {
		for _, server := range []string{"distrod", "ceiling"} {
			code, _, errs := run(t, t.Context(), "--target", addr, "--scenario", "query", "--duration", "50ms", "--warmup", "0s",
				"--concurrency", "2", "--services", "2", "--instances-per-service", "1", "--cleanup=false", "-q",
				"--tag", "server="+server, "--tag", "rep="+strconv.Itoa(rep), "--json", filepath.Join(dir, server+strconv.Itoa(rep)+".json"))
			if code != 0 {
				t.Fatalf("run: %s", errs)
			}
		}
	}
	code, out, errs = run(t, t.Context(), "summary", "--in", dir, "--scenario", "query", "--server", "distrod")
	if v, err := strconv.Atoi(strings.TrimSpace(out)); code != 0 || err != nil || v <= 0 {
		t.Fatalf("summary exit %d %q %q", code, out, errs)
	}
	if code, _, _ := run(t, t.Context(), "summary", "--in", dir, "--scenario", "beat"); code != 1 {
		t.Fatal("summary of a missing group succeeded")
	}
	md := filepath.Join(dir, "bench.md")
	code, _, errs = run(t, t.Context(), "report", "--in", dir, "--out", md, "--img-dir", filepath.Join(dir, "img"), "--command", "scripts/bench/run.sh")
	if code != 0 {
		t.Fatalf("report: %s", errs)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| query |", "## Memory per instance", "scripts/bench/run.sh"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	code, out, _ = run(t, t.Context(), "chart", "--in", dir, "--out", filepath.Join(dir, "img2"))
	if code != 0 || strings.Count(out, ".svg") != 3 {
		t.Fatalf("chart: exit %d %q", code, out)
	}
	if code, _, _ := run(t, t.Context(), "report", "--in", t.TempDir()); code != 1 {
		t.Fatal("report of an empty directory succeeded")
	}
}

func TestProtocolV2RefusesBeat(t *testing.T) {
	code, _, errs := run(t, t.Context(), "--target", "127.0.0.1:1", "--protocol", "v2", "--scenario", "beat", "--progress=never")
	if code != 1 || !strings.Contains(errs, "--scenario beat is not available over --protocol v2") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, _, errs = run(t, t.Context(), "--target", "127.0.0.1:1", "--protocol", "v3", "--progress=never")
	if code != 1 || !strings.Contains(errs, `--protocol "v3"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
