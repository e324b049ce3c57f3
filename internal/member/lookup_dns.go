package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// DefaultDNSInterval is how often a --members-dns name is re-resolved.
	DefaultDNSInterval = 5 * time.Second
	// DefaultDNSStartupTimeout bounds how long Start keeps resolving until
	// the first list is accepted (DNSConfig.Accept).
	DefaultDNSStartupTimeout = 2 * time.Minute

	dnsStartupRetryDelay = time.Second
	dnsRequestTimeout    = 3 * time.Second
)

// Resolver is the part of *net.Resolver the DNS lookup uses; tests inject a
// fake one.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DNSConfig configures a DNS member lookup.
type DNSConfig struct {
	// Name is what to resolve. A name whose first label starts with '_'
	// (_http._tcp.distro-headless) is looked up as an SRV record set: each
	// record's target:port is a member, so members keep stable host names
	// (a StatefulSet pod's own DNS name). Anything else is host or host:port,
	// looked up as A/AAAA records: each address with the port (DefaultPort
	// when none is given) is a member.
	Name string
	// Interval between re-resolutions; 0 means DefaultDNSInterval.
	Interval time.Duration
	// DefaultPort is the port of A/AAAA members when Name has none.
	DefaultPort int
	// Resolver; nil means net.DefaultResolver.
	Resolver Resolver
	// Accept, when set, must approve the first list before Start reports
	// it: Start keeps resolving (every second) until Accept returns nil or
	// StartupTimeout passes. The server passes a check that this node finds
	// itself in the list (ResolveSelf), because a new pod's own record can
	// appear in DNS a little after the pod starts.
	Accept func([]string) error
	// StartupTimeout bounds Start; 0 means DefaultDNSStartupTimeout.
	StartupTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// DNSLookup resolves a DNS name (typically a Kubernetes headless Service)
// into the member list and re-resolves it periodically, so that pods find
// each other without a cluster.conf.
//
// A failed resolution (resolver error, no records, an unusable record) is
// counted and logged, and the last good list stays in force: a DNS outage
// must not shrink the cluster. A changed list is applied only once two
// consecutive resolutions agree on it, so that one odd answer (a cache
// serving a stale set, an endpoint flapping) does not move ownership twice.
type DNSLookup struct {
	cfg      DNSConfig
	srv      bool
	host     string
	port     int
	resolver Resolver
	log      *slog.Logger
	retry    time.Duration

	consecutive atomic.Int64
	total       atomic.Uint64
}

var _ Lookup = (*DNSLookup)(nil)

// DNS returns a DNS member lookup, or an error if cfg.Name is not a valid
// DNS name (with an optional port for A/AAAA names).
func DNS(cfg DNSConfig) (*DNSLookup, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultDNSInterval
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = DefaultDNSStartupTimeout
	}
	if cfg.DefaultPort == 0 {
		cfg.DefaultPort = DefaultPort
	}
	d := &DNSLookup{cfg: cfg, resolver: cfg.Resolver, log: orDiscard(cfg.Logger), retry: dnsStartupRetryDelay}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	name := strings.TrimSpace(cfg.Name)
	if strings.HasPrefix(name, "_") {
		d.srv = true
		d.host = strings.ToLower(name)
		// Validate the labels after the underscored ones as a hostname.
		rest := strings.TrimSuffix(d.host, ".")
		for strings.HasPrefix(rest, "_") {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				rest = ""
				break
			}
			rest = rest[i+1:]
		}
		if rest == "" {
			return nil, fmt.Errorf("member: --members-dns %q: an SRV name needs a domain after its _service._proto labels", cfg.Name)
		}
		if _, err := ParseAddress(rest, cfg.DefaultPort); err != nil {
			return nil, fmt.Errorf("member: --members-dns %q: %w", cfg.Name, err)
		}
		return d, nil
	}
	// A fully qualified name may end in a dot, with or without a port.
	if h, p, err := net.SplitHostPort(name); err == nil {
		name = net.JoinHostPort(strings.TrimSuffix(h, "."), p)
	} else {
		name = strings.TrimSuffix(name, ".")
	}
	addr, err := ParseAddress(name, cfg.DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("member: --members-dns: %w", err)
	}
	host, port, err := splitAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("member: --members-dns: %w", err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil, fmt.Errorf("member: --members-dns %q is an IP address, not a DNS name (use --members)", cfg.Name)
	}
	d.host, d.port = host, port
	return d, nil
}

// Name returns "dns".
func (d *DNSLookup) Name() string { return "dns" }

// ConsecutiveFailures is the number of resolutions that failed since the last
// success.
func (d *DNSLookup) ConsecutiveFailures() int { return int(d.consecutive.Load()) }

// TotalFailures is the number of failed resolutions since Start.
func (d *DNSLookup) TotalFailures() uint64 { return d.total.Load() }

// Start resolves the name until it yields a list that Accept approves, calls
// onChange with it, and then re-resolves every Interval in a goroutine until
// ctx is cancelled. It fails if no acceptable list is found within
// StartupTimeout: a node must not start with an unknown cluster.
func (d *DNSLookup) Start(ctx context.Context, onChange func([]string)) error {
	deadline := time.Now().Add(d.cfg.StartupTimeout)
	var list []string
	for attempt := 1; ; attempt++ {
		var err error
		list, err = d.resolve(ctx)
		if err == nil && d.cfg.Accept != nil {
			if aerr := d.cfg.Accept(list); aerr != nil {
				err = fmt.Errorf("list %v not accepted: %w", list, aerr)
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !time.Now().Add(d.retry).Before(deadline) {
			return fmt.Errorf("member: --members-dns %s: no usable member list after %d attempts in %v: %w",
				d.cfg.Name, attempt, d.cfg.StartupTimeout, err)
		}
		d.log.Warn("DNS member list not usable yet; retrying", "name", d.cfg.Name, "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.retry):
		}
	}
	d.log.Info("member list loaded", "lookup", "dns", "name", d.cfg.Name, "members", list)
	onChange(slices.Clone(list))
	go d.poll(ctx, list, onChange)
	return nil
}

func (d *DNSLookup) poll(ctx context.Context, last []string, onChange func([]string)) {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	var pending []string // a changed list seen once, applied if the next poll agrees
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := d.resolve(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n := d.consecutive.Add(1)
			d.total.Add(1)
			d.log.Warn("DNS member lookup failed; keeping the last good list",
				"name", d.cfg.Name, "consecutive_failures", n, "error", err)
			continue
		}
		if n := d.consecutive.Swap(0); n > 0 {
			d.log.Info("DNS member lookup works again", "name", d.cfg.Name, "failed_lookups", n)
		}
		switch {
		case slices.Equal(list, last):
			pending = nil
		case !slices.Equal(list, pending):
			d.log.Debug("DNS member list differs; waiting for the next lookup to confirm",
				"name", d.cfg.Name, "members", list, "current", last)
			pending = list
		default:
			d.log.Info("DNS member list changed", "name", d.cfg.Name, "members", list, "previous", last)
			last, pending = list, nil
			onChange(slices.Clone(list))
		}
	}
}

// resolve returns the sorted, de-duplicated, normalised member list.
func (d *DNSLookup) resolve(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, min(dnsRequestTimeout, d.cfg.Interval))
	defer cancel()
	var out []string
	if d.srv {
		_, recs, err := d.resolver.LookupSRV(ctx, "", "", d.host)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			target := strings.TrimSuffix(r.Target, ".")
			if r.Port == 0 || target == "" {
				return nil, fmt.Errorf("SRV record %q port %d is unusable", r.Target, r.Port)
			}
			a, err := ParseAddress(net.JoinHostPort(target, strconv.Itoa(int(r.Port))), d.cfg.DefaultPort)
			if err != nil {
				return nil, fmt.Errorf("SRV record: %w", err)
			}
			out = append(out, a)
		}
	} else {
		addrs, err := d.resolver.LookupNetIP(ctx, "ip", d.host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			a = a.Unmap()
			if a.Zone() != "" {
				return nil, fmt.Errorf("address %v has a zone", a)
			}
			out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(d.port)))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no records")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
