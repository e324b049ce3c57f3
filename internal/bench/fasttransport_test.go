package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLeanTransportKeepAliveChunkedAndClose(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.(http.Flusher).Flush() // forces chunked encoding
			_, _ = io.WriteString(w, strings.Repeat("x", 5000))
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		default:
			_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("User-Agent")+" "+string(b))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	d := NewHTTPDriver([]string{addr}, HTTPOptions{Conns: 2, Timeout: 2 * time.Second})
	defer d.Close()

	for i := range 20 {
		o, b := d.do(t.Context(), 0, http.MethodPost, "/echo", "a=1", "k=v&n="+strings.Repeat("9", i), true)
		if !o.OK() || !strings.HasPrefix(string(b), "POST /echo?a=1 "+GoClientAgent+" k=v&n=") || o.Bytes != int64(len(b)) {
			t.Fatalf("%d: %+v %q", i, o, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("sequential requests used %d connections, want 1 (keep-alive)", n)
	}
	o, b := d.do(t.Context(), 0, http.MethodGet, "/chunked", "", "", true)
	if !o.OK() || len(b) != 5000 {
		t.Fatalf("chunked: %+v len %d", o, len(b))
	}
	o, b = d.do(t.Context(), 0, http.MethodGet, "/close", "", "", true)
	if !o.OK() || string(b) != "bye" {
		t.Fatalf("close: %+v %q", o, b)
	}
	// The connection the server closed is not reused.
	before := conns.Load()
	if o, _ := d.do(t.Context(), 0, http.MethodGet, "/x", "", "", false); !o.OK() {
		t.Fatalf("after close: %+v", o)
	}
	if conns.Load() != before+1 {
		t.Fatalf("connections %d → %d", before, conns.Load())
	}
}

// A pooled connection the server closed while idle is retried on a new
// connection, invisibly.
func TestLeanTransportRetriesStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// Answer one request per connection, then close without
				// saying so (no Connection: close).
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	d := NewHTTPDriver([]string{ln.Addr().String()}, HTTPOptions{Conns: 1, Timeout: 2 * time.Second})
	defer d.Close()
	for i := range 5 {
		time.Sleep(10 * time.Millisecond) // let the server's close arrive
		in := Instance{Service: "s", IP: "10.0.0.1", Port: 1}
		if o := d.Register(t.Context(), 0, &in); !o.OK() {
			t.Fatalf("request %d: %+v", i, o)
		}
	}
}

func TestLeanTransportTimeoutAndCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	addr := strings.TrimPrefix(srv.URL, "http://")
	d := NewHTTPDriver([]string{addr}, HTTPOptions{Timeout: 50 * time.Millisecond})
	defer d.Close()
	if o := d.Query(t.Context(), 0, "x"); o.Kind != "timeout" {
		t.Fatalf("kind %q, want timeout", o.Kind)
	}
	d2 := NewHTTPDriver([]string{addr}, HTTPOptions{Timeout: time.Minute})
	defer d2.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := d2.Query(ctx, 0, "x")
	if o.OK() || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel: %+v after %v", o, time.Since(start))
	}
}

func TestLeanTransportRejectsUnknownLengthBody(t *testing.T) {
	lt := newLeanTransport(time.Second, 1)
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", io.NopCloser(strings.NewReader("x")))
	req.ContentLength = -1
	if _, err := lt.RoundTrip(req); err != errUnsupportedRequest {
		t.Fatalf("err %v", err)
	}
	req, _ = http.NewRequest(http.MethodGet, "https://127.0.0.1:1/x", nil)
	if _, err := lt.RoundTrip(req); err != errUnsupportedRequest {
		t.Fatalf("https: err %v", err)
	}
}

func TestStdTransportOption(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("mixed", rs.addr())
	cfg.StdTransport = true
	res := runOK(t, cfg)
	if res.Driver != "http-v1/net-http" {
		t.Fatalf("driver %q", res.Driver)
	}
}
