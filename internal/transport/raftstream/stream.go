package raftstream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

const (
	magic      = "DRS1"
	nonceSize  = 32
	macSize    = sha256.Size
	maxIDSize  = 255
	maxPayload = 64 << 10
	// handshakeTimeout bounds a handshake, so a connection that stalls
	// in it holds a slot only briefly (a handshake is two round trips).
	handshakeTimeout = time.Second
	// maxPending bounds handshakes in progress at once, and
	// maxPendingPerSource those from one source address, so one host
	// cannot take every slot.
	maxPending          = 64
	maxPendingPerSource = 8
)

// Errors of the handshake. They never carry peer-supplied text.
var (
	ErrBadProof    = errors.New("raftstream: bad handshake proof")
	ErrNotMember   = errors.New("raftstream: peer is not a member")
	ErrMisdirected = errors.New("raftstream: connection meant for another member")
	ErrWrongServer = errors.New("raftstream: connection meant for another Raft server id (the dialer's address for it is stale)")
	ErrMalformed   = errors.New("raftstream: malformed handshake")
)

// IDSeparator joins a Raft address and the server id expected there in
// an address handed to Dial ("host:port/id"): the handshake then names
// the id, and the acceptor refuses a connection meant for another one.
const IDSeparator = "/"

// Config configures a Layer.
type Config struct {
	// Self is this node's member identity (ip:http-port).
	Self string
	// ServerID is this node's Raft server id: a connection naming another
	// id is refused (ErrWrongServer).
	ServerID string
	// Advertise is this node's Raft address as peers dial it; Addr
	// reports it (hashicorp/raft puts it in every RPC header). Empty: the
	// listener's address.
	Advertise string
	// AllowSource, if set, reports whether a connection from this source
	// IP may start a handshake; others are closed before a byte is read.
	AllowSource func(netip.Addr) bool
	// LocalIP, if valid, is the source address outgoing connections bind
	// to, so that peers filtering by source see this member's IP. A bind
	// that fails (the address is not local, e.g. behind NAT) falls back
	// to the system's choice.
	LocalIP netip.Addr
	// Secret is the cluster secret; nil means insecure (identities only).
	Secret []byte
	// IsMember reports whether a verified identity is a current member.
	IsMember func(string) bool
	// MemberOf maps a Raft address to the member identity listening there.
	MemberOf func(raft.ServerAddress) (string, error)
	// OnAuthFailure is called with a reason for every refused connection.
	OnAuthFailure func(reason string)
	Logger        *slog.Logger
}

// Layer is a raft.StreamLayer whose connections are authenticated.
type Layer struct {
	cfg   Config
	key   []byte
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	slots chan struct{}

	pendMu  sync.Mutex
	pending map[netip.Addr]int

	logMu   sync.Mutex
	nextLog time.Time
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen opens the Raft listener on addr.
func Listen(addr string, cfg Config) (*Layer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return New(ln, cfg), nil
}

// New serves the handshake on an open listener.
func New(ln net.Listener, cfg Config) *Layer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Layer{cfg: cfg, ln: ln, conns: make(chan net.Conn), done: make(chan struct{}), slots: make(chan struct{}, maxPending),
		pending: map[netip.Addr]int{}}
	if cfg.Secret != nil {
		l.key = deriveKey(cfg.Secret)
	}
	go l.acceptLoop()
	return l
}

func deriveKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("distro.raft.v1/key"))
	return m.Sum(nil)
}

func (l *Layer) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.Close()
			return
		}
		src := sourceIP(c.RemoteAddr())
		if l.cfg.AllowSource != nil && !l.cfg.AllowSource(src) {
			_ = c.Close() // not a member's address: not worth a handshake
			l.refused("source", c.RemoteAddr())
			continue
		}
		if !l.acquire(src) {
			_ = c.Close() // too many handshakes in progress (from this source)
			l.refused("busy", c.RemoteAddr())
			continue
		}
		go func() {
			defer l.release(src)
			sc, err := l.serverHandshake(c)
			if err != nil {
				_ = c.Close()
				l.refused(reason(err), c.RemoteAddr())
				return
			}
			select {
			case l.conns <- sc:
			case <-l.done:
				_ = sc.Close()
			}
		}()
	}
}

// sourceIP is the IP of a remote address (the zero Addr if it has none).
func sourceIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// acquire takes a handshake slot for a connection from src: one of
// maxPending, at most maxPendingPerSource of them per source.
func (l *Layer) acquire(src netip.Addr) bool {
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	if l.pending[src] >= maxPendingPerSource {
		return false
	}
	select {
	case l.slots <- struct{}{}:
	default:
		return false
	}
	l.pending[src]++
	return true
}

func (l *Layer) release(src netip.Addr) {
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	<-l.slots
	if l.pending[src]--; l.pending[src] <= 0 {
		delete(l.pending, src)
	}
}

func reason(err error) string {
	switch {
	case errors.Is(err, ErrBadProof):
		return "bad_mac"
	case errors.Is(err, ErrNotMember):
		return "not_member"
	case errors.Is(err, ErrMisdirected):
		return "misdirected"
	case errors.Is(err, ErrWrongServer):
		return "wrong_server"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "io"
}

func (l *Layer) refused(why string, remote net.Addr) {
	if l.cfg.OnAuthFailure != nil {
		l.cfg.OnAuthFailure(why)
	}
	l.logMu.Lock()
	now := time.Now()
	ok := now.After(l.nextLog)
	if ok {
		l.nextLog = now.Add(10 * time.Second)
	}
	l.logMu.Unlock()
	if ok {
		l.cfg.Logger.Warn("raft connection refused", "reason", why, "remote", remote.String())
	}
}

// Accept returns the next authenticated connection.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *Layer) Close() error {
	l.once.Do(func() { close(l.done); _ = l.ln.Close() })
	return nil
}

// Addr is the advertised address (Config.Advertise), else the listen
// address.
func (l *Layer) Addr() net.Addr {
	if l.cfg.Advertise != "" {
		return advertised(l.cfg.Advertise)
	}
	return l.ln.Addr()
}

// advertised is a net.Addr holding an advertised address.
type advertised string

func (advertised) Network() string  { return "tcp" }
func (a advertised) String() string { return string(a) }

// Dial connects to the Raft address of a member and runs the client side
// of the handshake. The address may name the server id expected there
// ("host:port/id", see IDSeparator).
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	hostPort, id, _ := strings.Cut(string(address), IDSeparator)
	to, err := l.cfg.MemberOf(raft.ServerAddress(hostPort))
	if err != nil {
		return nil, err
	}
	if id != "" {
		to += IDSeparator + id
	}
	c, err := l.dial(hostPort, timeout)
	if err != nil {
		return nil, err
	}
	sc, err := l.clientHandshake(c, to)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft handshake with %s: %w", to, err)
	}
	return sc, nil
}

// dial opens a TCP connection from LocalIP if one is set and local.
func (l *Layer) dial(hostPort string, timeout time.Duration) (net.Conn, error) {
	if l.cfg.LocalIP.IsValid() {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: l.cfg.LocalIP.AsSlice()}}
		c, err := d.Dial("tcp", hostPort)
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return c, err
		}
	}
	return net.DialTimeout("tcp", hostPort, timeout)
}

// transcript is what both proofs and the session keys cover.
func transcript(from, to string, nc, ns []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	for _, s := range []string{from, to} {
		b.WriteByte(byte(len(s)))
		b.WriteString(s)
	}
	b.Write(nc)
	b.Write(ns)
	return b.Bytes()
}

func (l *Layer) mac(label string, t []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(t)
	return m.Sum(nil)
}

func writeID(b *bytes.Buffer, s string) { b.WriteByte(byte(len(s))); b.WriteString(s) }

func readID(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	if n[0] == 0 {
		return "", ErrMalformed
	}
	buf := make([]byte, n[0])
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

func (l *Layer) clientHandshake(c net.Conn, to string) (net.Conn, error) {
	if len(l.cfg.Self) > maxIDSize || len(to) > maxIDSize {
		return nil, ErrMalformed
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	nc := make([]byte, nonceSize)
	_, _ = rand.Read(nc)
	var hello bytes.Buffer
	hello.WriteString(magic)
	writeID(&hello, l.cfg.Self)
	writeID(&hello, to)
	hello.Write(nc)
	if _, err := c.Write(hello.Bytes()); err != nil {
		return nil, err
	}
	if l.key == nil {
		var ok [1]byte
		if _, err := io.ReadFull(c, ok[:]); err != nil {
			return nil, err
		}
		return c, nil
	}
	reply := make([]byte, nonceSize+macSize)
	if _, err := io.ReadFull(c, reply); err != nil {
		return nil, err
	}
	ns := reply[:nonceSize]
	t := transcript(l.cfg.Self, to, nc, ns)
	if !hmac.Equal(reply[nonceSize:], l.mac("server", t)) {
		return nil, ErrBadProof
	}
	if _, err := c.Write(l.mac("client", t)); err != nil {
		return nil, err
	}
	return newSecureConn(c, l.key, t, true)
}

func (l *Layer) serverHandshake(c net.Conn) (net.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(c, m); err != nil {
		return nil, err
	}
	if string(m) != magic {
		return nil, ErrMalformed
	}
	from, err := readID(c)
	if err != nil {
		return nil, err
	}
	to, err := readID(c)
	if err != nil {
		return nil, err
	}
	nc := make([]byte, nonceSize)
	if _, err := io.ReadFull(c, nc); err != nil {
		return nil, err
	}
	if l.key == nil {
		if err := l.checkClaims(from, to); err != nil {
			return nil, err
		}
		if _, err := c.Write([]byte{1}); err != nil {
			return nil, err
		}
		return c, nil
	}
	ns := make([]byte, nonceSize)
	_, _ = rand.Read(ns)
	t := transcript(from, to, nc, ns)
	if _, err := c.Write(append(ns, l.mac("server", t)...)); err != nil {
		return nil, err
	}
	proof := make([]byte, macSize)
	if _, err := io.ReadFull(c, proof); err != nil {
		return nil, err
	}
	// Identity claims are judged only once the proof shows the peer holds
	// the secret, so an outsider learns nothing about membership.
	if !hmac.Equal(proof, l.mac("client", t)) {
		return nil, ErrBadProof
	}
	if err := l.checkClaims(from, to); err != nil {
		return nil, err
	}
	return newSecureConn(c, l.key, t, false)
}

// checkClaims judges a handshake's identities: to must be this member
// (and, if it names a server id, this node's), from another member.
func (l *Layer) checkClaims(from, to string) error {
	member, id, named := strings.Cut(to, IDSeparator)
	switch {
	case member != l.cfg.Self:
		return ErrMisdirected
	case named && id != l.cfg.ServerID:
		return ErrWrongServer
	case from == l.cfg.Self || (l.cfg.IsMember != nil && !l.cfg.IsMember(from)):
		return ErrNotMember
	}
	return nil
}

// secureConn frames and encrypts a connection after the handshake.
type secureConn struct {
	net.Conn
	rd, wr     cipher.AEAD
	rdN, wrN   uint64
	rmu, wmu   sync.Mutex
	pending    []byte
	rbuf, wbuf []byte
}

func newSecureConn(c net.Conn, key, t []byte, client bool) (net.Conn, error) {
	mk := func(label string) (cipher.AEAD, error) {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write(t)
		blk, err := aes.NewCipher(m.Sum(nil))
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(blk)
	}
	c2s, err := mk("c2s")
	if err != nil {
		return nil, err
	}
	s2c, err := mk("s2c")
	if err != nil {
		return nil, err
	}
	sc := &secureConn{Conn: c, rd: c2s, wr: s2c}
	if client {
		sc.rd, sc.wr = s2c, c2s
	}
	return sc, nil
}

func nonce(n uint64) []byte {
	var b [12]byte
	binary.BigEndian.PutUint64(b[4:], n)
	return b[:]
}

func (s *secureConn) Read(p []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for len(s.pending) == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(s.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n < uint32(s.rd.Overhead()) || n > maxPayload+uint32(s.rd.Overhead()) {
			return 0, ErrMalformed
		}
		if cap(s.rbuf) < int(n) {
			s.rbuf = make([]byte, n)
		}
		buf := s.rbuf[:n]
		if _, err := io.ReadFull(s.Conn, buf); err != nil {
			return 0, err
		}
		plain, err := s.rd.Open(buf[:0], nonce(s.rdN), buf, hdr[:])
		if err != nil {
			return 0, ErrBadProof
		}
		s.rdN++
		s.pending = plain
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *secureConn) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxPayload)]
		n := len(chunk) + s.wr.Overhead()
		if cap(s.wbuf) < 4+n {
			s.wbuf = make([]byte, 4+n)
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		buf := append(s.wbuf[:0], hdr[:]...)
		buf = s.wr.Seal(buf, nonce(s.wrN), chunk, hdr[:])
		s.wrN++
		if _, err := s.Conn.Write(buf); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// MemberOfOffset returns a MemberOf for Raft ports at member port + offset.
func MemberOfOffset(offset int) func(raft.ServerAddress) (string, error) {
	return func(a raft.ServerAddress) (string, error) {
		host, port, err := net.SplitHostPort(string(a))
		if err != nil {
			return "", err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return "", err
		}
		return net.JoinHostPort(host, strconv.Itoa(p-offset)), nil
	}
}
