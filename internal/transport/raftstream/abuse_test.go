package raftstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/distro-registry/distro/internal/testutil"
)

// acceptAndClose accepts and closes connections until srv closes,
// signalling each on accepted (if set).
func acceptAndClose(srv *Layer, accepted chan<- struct{}) {
	for {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		c.Close()
		if accepted != nil {
			accepted <- struct{}{}
		}
	}
}

// proxy forwards one connection to target, recording the client's bytes.
func proxy(t *testing.T, target string) (string, *testutil.SyncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rec := &testutil.SyncBuffer{}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			return
		}
		go func() { _, _ = io.Copy(io.MultiWriter(rec, s), c); s.Close() }()
		_, _ = io.Copy(c, s)
		c.Close()
	}()
	return ln.Addr().String(), rec
}

// A recorded handshake replayed on a new connection is refused: the
// server's fresh nonce changes the transcript, so the recorded client proof
// does not verify, and nothing reaches Raft.
func TestReplayedHandshake(t *testing.T) {
	srv, cli, ref := pair(t, secret, secret, nodeA, nodeB)
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr, rec := proxy(t, srv.Addr().String())
	c, err := cli.Dial(raft.ServerAddress(addr), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("append entries")); err != nil {
		t.Fatal(err)
	}
	first := <-accepted
	if _, err := io.ReadFull(first, make([]byte, len("append entries"))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	first.Close()
	hello := 4 + 1 + len(nodeA) + 1 + len(nodeB) + nonceSize
	recorded := []byte(rec.String())
	if len(recorded) < hello+macSize {
		t.Fatalf("recorded %d bytes", len(recorded))
	}
	// Replay the whole client side: hello, proof and the sealed frame.
	raw, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(recorded); err != nil {
		t.Fatal(err)
	}
	ref.wait(t, "bad_mac")
	select {
	case <-accepted:
		t.Fatal("a replayed handshake was accepted")
	case <-time.After(100 * time.Millisecond):
	}
}

// frames splits a sealed stream into its frames.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		n := int(binary.BigEndian.Uint32(b[:4]))
		out = append(out, b[:4+n])
		b = b[4+n:]
	}
	return out
}

// bufConn is a net.Conn that reads from r and discards writes.
type bufConn struct {
	r io.Reader
	w io.Writer
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *bufConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}
func (*bufConn) Close() error                     { return nil }
func (*bufConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (*bufConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (*bufConn) SetDeadline(time.Time) error      { return nil }
func (*bufConn) SetReadDeadline(time.Time) error  { return nil }
func (*bufConn) SetWriteDeadline(time.Time) error { return nil }

// Frames are bound to their place in the stream: a frame replayed,
// reordered, dropped or taken from another session is refused, never
// delivered.
func TestFrameReplayReorderDrop(t *testing.T) {
	key := deriveKey(secret)
	seal := func(tr string) [][]byte {
		var out bytes.Buffer
		c, _ := newSecureConn(&bufConn{w: &out}, key, []byte(tr), true)
		for _, m := range []string{"zero", "one", "two"} {
			if _, err := c.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		return frames(t, out.Bytes())
	}
	f := seal("transcript")
	other := seal("another transcript")
	read := func(stream ...[]byte) (got []string, err error) {
		c, _ := newSecureConn(&bufConn{r: bytes.NewReader(bytes.Join(stream, nil))}, key, []byte("transcript"), false)
		for {
			buf := make([]byte, 16)
			n, err := c.Read(buf)
			if err != nil {
				return got, err
			}
			got = append(got, string(buf[:n]))
		}
	}
	if got, err := read(f...); !errors.Is(err, io.EOF) || len(got) != 3 {
		t.Fatalf("intact stream: %q %v", got, err)
	}
	for name, stream := range map[string][][]byte{
		"replayed":      {f[0], f[0], f[1]},
		"reordered":     {f[1], f[0], f[2]},
		"dropped":       {f[0], f[2]},
		"other session": {f[0], other[1]},
	} {
		got, err := read(stream...)
		if !errors.Is(err, ErrBadProof) {
			t.Errorf("%s: read ended with %v, want ErrBadProof", name, err)
		}
		if len(got) > 1 || (len(got) == 1 && got[0] != "zero") {
			t.Errorf("%s: delivered %q", name, got)
		}
	}
}

// Stalled handshakes from one source take at most maxPendingPerSource
// slots and are closed after handshakeTimeout: a member on another address
// still connects while one host holds every connection it can open.
func TestStalledHandshakesBounded(t *testing.T) {
	srv, cli, ref := pair(t, secret, secret, nodeA, nodeB)
	go acceptAndClose(srv, nil)
	var stalled []net.Conn
	for range maxPending {
		c, err := net.Dial("tcp", srv.Addr().String()) // from 127.0.0.1, sends nothing
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	ref.wait(t, "busy")
	cli.cfg.LocalIP = netip.MustParseAddr("127.0.0.2")
	c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatalf("a member on another address could not connect while one host stalls: %v", err)
	}
	c.Close()
	// The stalled connections are closed by the server once the
	// handshake timeout passes (bounded wait; the timeout is 1 s).
	_ = stalled[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	if _, err := stalled[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("a stalled handshake got an answer")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a stalled handshake was never closed")
	}
	if d := time.Since(t0); d > 4*handshakeTimeout {
		t.Fatalf("a stalled handshake held its slot for %v", d)
	}
}

// A source address that is not a member's is refused before the
// handshake; a member's address is served.
func TestSourceFilter(t *testing.T) {
	srv, cli, ref := pairWith(t, func(c *Config) {
		c.AllowSource = func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.2") }
	}, secret, secret, nodeA, nodeB)
	go acceptAndClose(srv, nil)
	if c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil {
		c.Close()
		t.Fatal("a connection from a non-member address completed the handshake")
	}
	ref.wait(t, "source")
	cli.cfg.LocalIP = netip.MustParseAddr("127.0.0.2")
	c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("member address refused: %v", err)
	}
	c.Close()
}

// A dial that names a server id reaches only that server: a stale address
// (another node, or a wiped one, now listens there) is refused instead of
// delivering Raft RPCs meant for someone else.
func TestWrongServerRefused(t *testing.T) {
	srv, cli, ref := pairWith(t, func(c *Config) { c.ServerID = "b-incarnation" }, secret, secret, nodeA, nodeB)
	accepted := make(chan struct{}, 1)
	go acceptAndClose(srv, accepted)
	addr := srv.Addr().String()
	if c, err := cli.Dial(raft.ServerAddress(addr+IDSeparator+"someone-else"), time.Second); err == nil {
		c.Close()
	}
	ref.wait(t, "wrong_server")
	select {
	case <-accepted:
		t.Fatal("a connection for another server id was accepted")
	case <-time.After(100 * time.Millisecond):
	}
	c, err := cli.Dial(raft.ServerAddress(addr+IDSeparator+"b-incarnation"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection for the right id was not accepted")
	}
}

// FuzzServerHandshake: no input panics the acceptor's handshake; in
// insecure mode (identities only) an input it accepts names this member
// and a member peer.
func FuzzServerHandshake(f *testing.F) {
	var hello bytes.Buffer
	hello.WriteString(magic)
	writeID(&hello, nodeA)
	writeID(&hello, nodeB)
	hello.Write(make([]byte, nonceSize))
	f.Add(hello.Bytes(), false)
	f.Add(append(hello.Bytes(), make([]byte, macSize)...), true)
	f.Add([]byte("DRS1\x00"), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, secure bool) {
		cfg := Config{Self: nodeB, ServerID: "b", IsMember: func(m string) bool { return m == nodeA }, Logger: slog.New(slog.DiscardHandler)}
		l := &Layer{cfg: cfg}
		if secure {
			l.key = deriveKey(secret)
		}
		c, err := l.serverHandshake(&bufConn{r: bytes.NewReader(data)})
		if err != nil {
			return
		}
		if secure {
			t.Fatal("a forged secure handshake was accepted")
		}
		_ = c
		if !bytes.HasPrefix(data, []byte(magic)) || !bytes.Contains(data, []byte(nodeA)) || !bytes.Contains(data, []byte(nodeB)) {
			t.Fatalf("accepted a handshake without the magic and both identities: %q", data)
		}
	})
}

// FuzzFrameRead: no input panics the frame decoder, and bytes without a
// valid seal are never delivered.
func FuzzFrameRead(f *testing.F) {
	key := deriveKey(secret)
	var out bytes.Buffer
	c, _ := newSecureConn(&bufConn{w: &out}, key, []byte("t"), true)
	_, _ = c.Write([]byte("hello"))
	_, _ = c.Write([]byte("world"))
	f.Add(out.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _ := newSecureConn(&bufConn{r: bytes.NewReader(data)}, key, []byte("t"), false)
		var got []byte
		buf := make([]byte, 1024)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		// The only frames sealed under this key and transcript are the
		// seed's "hello" and "world": nothing else can be delivered.
		if !bytes.HasPrefix([]byte("helloworld"), got) {
			t.Fatalf("delivered %q from an unsealed stream", got)
		}
	})
}
