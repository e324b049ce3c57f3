package raftstream

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const (
	nodeA = "127.0.0.1:8848"
	nodeB = "127.0.0.1:8858"
)

var secret = []byte("a-cluster-secret-of-32-bytes-or-more!!")

type refusals struct {
	mu sync.Mutex
	rs []string
}

func (r *refusals) add(s string) { r.mu.Lock(); r.rs = append(r.rs, s); r.mu.Unlock() }

func (r *refusals) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := strings.Join(r.rs, ",")
		r.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q refusal (got %v)", want, r.rs)
}

// pair starts a server layer for nodeB and a dialing layer for nodeA.
func pair(t *testing.T, serverSecret, clientSecret []byte, members ...string) (srv, cli *Layer, ref *refusals) {
	t.Helper()
	return pairWith(t, nil, serverSecret, clientSecret, members...)
}

// pairWith is pair with a change of the server's configuration.
func pairWith(t *testing.T, mod func(*Config), serverSecret, clientSecret []byte, members ...string) (srv, cli *Layer, ref *refusals) {
	t.Helper()
	ref = &refusals{}
	isMember := func(m string) bool {
		for _, x := range members {
			if x == m {
				return true
			}
		}
		return false
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	memberOf := func(raft.ServerAddress) (string, error) { return nodeB, nil }
	scfg := Config{Self: nodeB, Secret: serverSecret, IsMember: isMember, MemberOf: memberOf,
		OnAuthFailure: ref.add, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&scfg)
	}
	srv = New(ln, scfg)
	cln, _ := net.Listen("tcp", "127.0.0.1:0")
	cli = New(cln, Config{Self: nodeA, Secret: clientSecret, IsMember: isMember, MemberOf: memberOf, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { srv.Close(); cli.Close() })
	_ = addr
	return srv, cli, ref
}

func TestHandshakeAndFrames(t *testing.T) {
	srv, cli, _ := pair(t, secret, secret, nodeA, nodeB)
	got := make(chan []byte, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 300<<10))
		_, _ = c.Write([]byte("pong"))
		got <- b
	}()
	c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("raft-entries."), 300<<10/13+1)[:300<<10]
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("server read %d bytes, want %d", len(b), len(payload))
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("reply %q %v", buf, err)
	}
}

// A forged peer without the secret never gets a Raft RPC read: raw
// hashicorp/raft bytes (the JRaft-style attack), a wrong-key handshake, a
// reflected proof, a non-member and a misdirected connection are all
// refused (a replayed handshake: TestReplayedHandshake).
func TestForgedPeersRefused(t *testing.T) {
	t.Run("raw raft rpc", func(t *testing.T) {
		srv, _, ref := pair(t, secret, secret, nodeA, nodeB)
		accepted := make(chan struct{})
		go func() {
			if c, err := srv.Accept(); err == nil {
				c.Close()
				close(accepted)
			}
		}()
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// rpcAppendEntries (0) followed by a msgpack map: what a plain
		// NetworkTransport peer would send.
		_, _ = c.Write(append([]byte{0x00, 0x8f}, bytes.Repeat([]byte{0xa1, 'x'}, 64)...))
		ref.wait(t, "malformed")
		select {
		case <-accepted:
			t.Fatal("a raw raft connection was accepted")
		case <-time.After(100 * time.Millisecond):
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		srv, cli, ref := pair(t, secret, []byte("another-secret-of-32-bytes-or-more!!!"), nodeA, nodeB)
		if _, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil || !strings.Contains(err.Error(), "proof") {
			t.Fatalf("dial with a wrong secret: %v", err)
		}
		_ = ref // the client refuses first: the server's proof does not verify
	})
	t.Run("forged client proof", func(t *testing.T) {
		srv, _, ref := pair(t, secret, secret, nodeA, nodeB)
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var hello bytes.Buffer
		hello.WriteString(magic)
		writeID(&hello, nodeA)
		writeID(&hello, nodeB)
		hello.Write(make([]byte, nonceSize))
		_, _ = c.Write(hello.Bytes())
		reply := make([]byte, nonceSize+macSize)
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(reply[nonceSize:]) // reflect the server's proof as ours
		ref.wait(t, "bad_mac")
	})
	t.Run("not a member", func(t *testing.T) {
		srv, cli, ref := pair(t, secret, secret, nodeB) // nodeA is not listed
		if c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil {
			// The client finishes its side before the server judges
			// membership; the server then closes without accepting.
			buf := make([]byte, 1)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(buf); err == nil {
				t.Fatal("non-member connection stayed open")
			}
			c.Close()
		}
		ref.wait(t, "not_member")
	})
	t.Run("misdirected", func(t *testing.T) {
		srv, cli, ref := pair(t, secret, secret, nodeA, nodeB)
		cli.cfg.MemberOf = func(raft.ServerAddress) (string, error) { return "127.0.0.1:9999", nil }
		if c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil {
			c.Close()
		}
		ref.wait(t, "misdirected")
	})
}

// A frame altered in transit breaks the stream instead of being delivered.
func TestTamperedFrame(t *testing.T) {
	a, b := net.Pipe()
	key := deriveKey(secret)
	tr := []byte("transcript")
	ca, _ := newSecureConn(a, key, tr, true)
	cb, _ := newSecureConn(&flipConn{Conn: b}, key, tr, false)
	go func() { _, _ = ca.Write([]byte("append entries")) }()
	buf := make([]byte, 64)
	if _, err := cb.Read(buf); err == nil {
		t.Fatal("tampered frame read without error")
	}
}

// flipConn flips one bit of the first ciphertext byte it reads.
type flipConn struct {
	net.Conn
	n int
}

func (f *flipConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	for i := 0; i < n; i++ {
		if f.n == 5 {
			p[i] ^= 1
		}
		f.n++
	}
	return n, err
}
