package member

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// DefaultAddressServerInterval is how often an address server is polled;
	// it matches Nacos.
	DefaultAddressServerInterval = 5 * time.Second
	// AddressServerPath is where ServeAddressServer publishes the list; it is
	// the Nacos default address-server path, so Nacos nodes can use it too.
	AddressServerPath = "/nacos/serverlist"

	addrServerStartupAttempts = 5
	addrServerRetryDelay      = 200 * time.Millisecond
	addrServerRequestTimeout  = 3 * time.Second
	addrServerMaxBody         = 1 << 20
)

// AddressServerLookup polls an HTTP address server for the member list, the
// way Nacos's address-server mode does, for deployments where one service
// publishes the cluster's membership.
type AddressServerLookup struct {
	url         string
	interval    time.Duration
	defaultPort int
	client      *http.Client
	log         *slog.Logger

	startupAttempts int
	retryDelay      time.Duration

	consecutive atomic.Int64
	total       atomic.Uint64
}

var _ Lookup = (*AddressServerLookup)(nil)

// AddressServer returns a lookup that GETs rawURL every interval (0 means
// DefaultAddressServerInterval) and parses the body in cluster.conf format.
// A failed poll (transport error, non-200 status, unparsable or empty body)
// is counted and logged, and the last good list stays in force; the address
// server going away must not shrink the cluster. A nil client gets a default
// one; a nil logger discards.
func AddressServer(rawURL string, interval time.Duration, defaultPort int, client *http.Client, logger *slog.Logger) *AddressServerLookup {
	if interval <= 0 {
		interval = DefaultAddressServerInterval
	}
	if client == nil {
		client = &http.Client{}
	}
	return &AddressServerLookup{
		url:             rawURL,
		interval:        interval,
		defaultPort:     defaultPort,
		client:          client,
		log:             orDiscard(logger),
		startupAttempts: addrServerStartupAttempts,
		retryDelay:      addrServerRetryDelay,
	}
}

// Name returns "address-server".
func (a *AddressServerLookup) Name() string { return "address-server" }

// ConsecutiveFailures is the number of polls that failed since the last
// success, for health pages and alerts (Nacos flags the address server
// unhealthy after 12).
func (a *AddressServerLookup) ConsecutiveFailures() int { return int(a.consecutive.Load()) }

// TotalFailures is the number of failed polls since Start, for metrics.
func (a *AddressServerLookup) TotalFailures() uint64 { return a.total.Load() }

// Start fetches the list, retrying a few times in quick succession, calls
// onChange with it and then polls in a goroutine until ctx is cancelled. If
// no attempt succeeds, Start returns the last error: a node must not start
// with an unknown cluster.
func (a *AddressServerLookup) Start(ctx context.Context, onChange func([]string)) error {
	u, err := url.Parse(a.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("member: address server URL %q must be an absolute http(s) URL", a.url)
	}
	var list []string
	for attempt := 1; ; attempt++ {
		list, err = a.fetch(ctx)
		if err == nil {
			break
		}
		a.log.Warn("address server unavailable at startup", "url", a.url, "attempt", attempt, "error", err)
		if attempt >= a.startupAttempts {
			return fmt.Errorf("member: address server %s: no member list after %d attempts: %w", a.url, attempt, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.retryDelay):
		}
	}
	a.log.Info("member list loaded", "lookup", "address-server", "url", a.url, "members", list)
	onChange(slices.Clone(list))
	go a.poll(ctx, list, onChange)
	return nil
}

func (a *AddressServerLookup) poll(ctx context.Context, last []string, onChange func([]string)) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := a.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n := a.consecutive.Add(1)
			a.total.Add(1)
			a.log.Warn("address server poll failed; keeping the last good list",
				"url", a.url, "consecutive_failures", n, "error", err)
			continue
		}
		if n := a.consecutive.Swap(0); n > 0 {
			a.log.Info("address server reachable again", "url", a.url, "failed_polls", n)
		}
		if slices.Equal(list, last) {
			continue
		}
		a.log.Info("address server member list changed", "url", a.url, "members", list, "previous", last)
		last = list
		onChange(slices.Clone(list))
	}
}

func (a *AddressServerLookup) fetch(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, min(addrServerRequestTimeout, a.interval))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, addrServerMaxBody))
		return nil, fmt.Errorf("unexpected HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, addrServerMaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > addrServerMaxBody {
		return nil, fmt.Errorf("reply larger than %d bytes", addrServerMaxBody)
	}
	list, err := ParseMembers(string(body), a.defaultPort)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("empty member list")
	}
	return list, nil
}

// AddressServerHandler serves the member list in path as text/plain, one
// entry per line, so that a small address server can publish a cluster's
// membership from one file. The file is re-read on every request, so edits
// take effect at once. Entries are validated and normalised but keep their
// port only if they had one, so each client still applies its own default
// port. An unreadable or invalid file is a 500, which clients treat as a
// failed poll (they keep their last good list) rather than as a new list.
func AddressServerHandler(path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := renderMemberFile(path)
		if err != nil {
			http.Error(w, "member list unavailable: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, body)
	})
}

// renderMemberFile reads and normalises a member file for AddressServerHandler.
func renderMemberFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	entries, err := parseEntries(string(b))
	if err != nil {
		return "", err
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, e.String())
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	if len(lines) == 0 {
		return "", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// ServeAddressServer runs a stand-alone address server on listenAddr that
// publishes file at AddressServerPath, until ctx is cancelled. It is the body
// of the "distrod address-server" subcommand. It fails at once if the file
// cannot be read or parsed, so a typo is caught before any node polls it.
// It returns nil after a clean shutdown.
func ServeAddressServer(ctx context.Context, listenAddr, file string, logger *slog.Logger) error {
	if _, err := renderMemberFile(file); err != nil {
		return fmt.Errorf("member: address server: %w", err)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("member: address server: %w", err)
	}
	return serveAddressServer(ctx, ln, file, orDiscard(logger))
}

func serveAddressServer(ctx context.Context, ln net.Listener, file string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle(AddressServerPath, AddressServerHandler(file))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("address server listening", "addr", ln.Addr().String(), "path", AddressServerPath, "file", file)
	select {
	case err := <-errc:
		return fmt.Errorf("member: address server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // Serve returns ErrServerClosed once Shutdown starts.
	if err != nil {
		return fmt.Errorf("member: address server shutdown: %w", err)
	}
	log.Info("address server stopped")
	return nil
}
