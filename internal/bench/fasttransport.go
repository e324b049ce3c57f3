package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// leanTransport is a minimal HTTP/1.1 keep-alive http.RoundTripper for
// load generation. Each request borrows an idle connection (or dials),
// writes the request in one buffered write, and parses the answer with
// http.ReadResponse; the connection returns to the pool when the body has
// been read to the end. There are no per-connection goroutines and no
// channel hand-offs, which roughly halves the client CPU per request
// compared with http.Transport, so that one load core can saturate one
// server core. It supports what the benchmark needs: plain http, bodies of
// known length, Content-Length or chunked responses. Anything else should
// use http.Transport (HTTPOptions.StdTransport).
type leanTransport struct {
	dialer  net.Dialer
	timeout time.Duration
	maxIdle int

	mu   sync.Mutex
	idle map[string][]*leanConn
}

type leanConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newLeanTransport(timeout time.Duration, maxIdlePerHost int) *leanTransport {
	return &leanTransport{dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, timeout: timeout,
		maxIdle: maxIdlePerHost, idle: map[string][]*leanConn{}}
}

func (t *leanTransport) get(host string) *leanConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[host]
	if n := len(l); n > 0 {
		c := l[n-1]
		t.idle[host] = l[:n-1]
		return c
	}
	return nil
}

func (t *leanTransport) put(host string, c *leanConn) {
	t.mu.Lock()
	if len(t.idle[host]) < t.maxIdle {
		t.idle[host] = append(t.idle[host], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.c.Close()
	}
}

// CloseIdleConnections closes every pooled connection.
func (t *leanTransport) CloseIdleConnections() {
	t.mu.Lock()
	all := t.idle
	t.idle = map[string][]*leanConn{}
	t.mu.Unlock()
	for _, l := range all {
		for _, c := range l {
			c.c.Close()
		}
	}
}

var errUnsupportedRequest = errors.New("lean transport: unsupported request (needs http and a body of known length)")

// RoundTrip implements http.RoundTripper.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || (req.Body != nil && req.ContentLength <= 0) {
		return nil, errUnsupportedRequest
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	host := req.URL.Host
	for attempt := 0; ; attempt++ {
		c := t.get(host)
		reused := c != nil
		if c == nil {
			nc, err := t.dialer.DialContext(req.Context(), "tcp", host)
			if err != nil {
				return nil, err
			}
			c = &leanConn{c: nc, br: bufio.NewReaderSize(nc, 32<<10), bw: bufio.NewWriterSize(nc, 8<<10)}
		}
		resp, err := t.exchange(c, req, host, body)
		if err != nil {
			c.c.Close()
			// A pooled connection the server has closed fails at once:
			// retry once on a fresh one (the request was not processed).
			if reused && attempt == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
				continue
			}
			return nil, err
		}
		return resp, nil
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func (t *leanTransport) exchange(c *leanConn, req *http.Request, host string, body []byte) (*http.Response, error) {
	if t.timeout > 0 {
		_ = c.c.SetDeadline(time.Now().Add(t.timeout))
	}
	if ctx := req.Context(); ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	w := c.bw
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if body != nil {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, err
	}
	resp.Body = &leanBody{rc: resp.Body, t: t, c: c, host: host, keep: !resp.Close}
	return resp, nil
}

// leanBody returns its connection to the pool once read to EOF, or closes
// it when abandoned early.
type leanBody struct {
	rc   io.ReadCloser
	t    *leanTransport
	c    *leanConn
	host string
	keep bool
	done bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *leanBody) finish(clean bool) {
	b.done = true
	if clean && b.keep {
		b.t.put(b.host, b.c)
		return
	}
	b.c.c.Close()
}
