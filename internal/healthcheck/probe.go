package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distro-registry/distro/internal/addrpolicy"
	"github.com/distro-registry/distro/internal/model"
)

// Probe is one check to run: the instance's registered address (Host is
// its ip, Port the instance port or the cluster's check port) and the
// cluster's checker. Probes are comparable values.
type Probe struct {
	Host    string
	Port    int
	Check   model.HealthChecker
	Timeout time.Duration
}

// Addr returns the host:port the probe targets.
func (p *Probe) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Prober runs probes. Probe returns nil when the instance passed; ctx
// carries the probe's timeout. Implementations must be safe for concurrent
// use.
type Prober interface {
	Probe(ctx context.Context, p *Probe) error
}

// MaxResponseBytes bounds how much of an HTTP check's response body is
// read (the status code decides; the rest is discarded with the
// connection).
const MaxResponseBytes = 4 << 10

// NetProber checks with TCP connects and HTTP GETs. It only ever connects to
// the probe's own address: no proxy, no redirects followed, and the dialer
// refuses any other address, and any address its policy refuses.
type NetProber struct {
	dialer net.Dialer
	client *http.Client
	policy addrpolicy.Policy
}

type targetKey struct{}

// NewNetProber returns a prober with no connection reuse: every check
// opens its own connection, as a health check should. It connects only to
// addresses policy allows, checked on the address dialled (after a host
// name is resolved), so a registered name cannot route around it.
func NewNetProber(policy addrpolicy.Policy) *NetProber {
	n := &NetProber{policy: policy}
	n.dialer.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("refusing to connect to %s: not an IP address", address)
		}
		if err := n.policy.Check(ap.Addr()); err != nil {
			return fmt.Errorf("refusing to connect to %s: %w (--health-check-deny / --health-check-allow)", address, err)
		}
		return nil
	}
	tr := &http.Transport{
		Proxy: nil, // never through a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if want, _ := ctx.Value(targetKey{}).(string); addr != want {
				return nil, fmt.Errorf("refusing to connect to %s: not the instance address %s", addr, want)
			}
			return n.dialer.DialContext(ctx, network, addr)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	n.client = &http.Client{Transport: tr,
		// A redirect is an answer, judged by its status: following it
		// would send the check somewhere other than the instance.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return n
}

// Probe implements Prober.
func (n *NetProber) Probe(ctx context.Context, p *Probe) error {
	switch p.Check.Type {
	case model.CheckTCP:
		return n.tcp(ctx, p)
	case model.CheckHTTP:
		return n.http(ctx, p)
	}
	return fmt.Errorf("no probe for check type %q", p.Check.Type)
}

func (n *NetProber) tcp(ctx context.Context, p *Probe) error {
	conn, err := n.dialer.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		return fmt.Errorf("tcp: %w", err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Close with a reset: thousands of checks a minute must not
		// leave as many sockets in TIME_WAIT on this node.
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return nil
}

func (n *NetProber) http(ctx context.Context, p *Probe) error {
	path, err := url.ParseRequestURI(p.Check.Path)
	if err != nil || path.Host != "" || path.Scheme != "" {
		return fmt.Errorf("http: bad path %q", p.Check.Path)
	}
	addr := p.Addr()
	u := url.URL{Scheme: "http", Host: addr, Path: path.Path, RawPath: path.RawPath, RawQuery: path.RawQuery}
	ctx = context.WithValue(ctx, targetKey{}, addr)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	req.Header.Set("User-Agent", "distro-health-check")
	for _, h := range p.Check.ParsedHeaders() {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value // only the header: the connection still goes to addr
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("http: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	_ = resp.Body.Close()
	if resp.StatusCode != p.Check.ExpectedCode {
		return fmt.Errorf("http: status %d, want %d", resp.StatusCode, p.Check.ExpectedCode)
	}
	return nil
}
