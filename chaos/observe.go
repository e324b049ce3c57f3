package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one read of one node by the observer: its readiness and every
// workload instance it lists.
type Sample struct {
	Node  string `json:"node"`
	Round int    `json:"round"` // poller round; -1 for startup-watch samples
	T0    int64  `json:"t0"`
	T1    int64  `json:"t1"`
	// Ready is the /readyz status (0: no answer).
	Ready int `json:"ready"`
	// OK: the catalog read answered.
	OK bool `json:"ok"`
	// Inst maps "service/ip:port" to the healthy flag.
	Inst map[string]bool `json:"inst,omitempty"`
}

// Observer reads nodes from the root namespace through the bridge address.
type Observer struct {
	httpc  *http.Client
	prefix string // service name filter of the catalog read

	mu      sync.Mutex
	samples []Sample
	round   int
}

func newObserver(prefix string) *Observer {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     10 * time.Second,
	}
	return &Observer{httpc: &http.Client{Transport: tr}, prefix: prefix}
}

func (o *Observer) get(ctx context.Context, addr, path string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := o.httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	return resp.StatusCode, b, err
}

// Ready returns the /readyz status of addr (0 if it did not answer).
func (o *Observer) Ready(ctx context.Context, addr string) int {
	st, _, err := o.get(ctx, addr, "/readyz", 700*time.Millisecond)
	if err != nil {
		return 0
	}
	return st
}

// Catalog reads every instance of the workload's services on addr.
func (o *Observer) Catalog(ctx context.Context, addr string) (map[string]bool, error) {
	q := url.Values{"withInstances": {"true"}, "pageNo": {"1"}, "pageSize": {"10000"}, "serviceNameParam": {o.prefix}}
	st, b, err := o.get(ctx, addr, "/nacos/v1/ns/catalog/services?"+q.Encode(), 1500*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("catalog: status %d", st)
	}
	var svcs []struct {
		ServiceName string `json:"serviceName"`
		ClusterMap  map[string]struct {
			Hosts []struct {
				IP      string `json:"ip"`
				Port    int    `json:"port"`
				Healthy bool   `json:"healthy"`
			} `json:"hosts"`
		} `json:"clusterMap"`
	}
	if err := json.Unmarshal(b, &svcs); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	out := make(map[string]bool)
	for _, s := range svcs {
		for _, c := range s.ClusterMap {
			for _, h := range c.Hosts {
				out[s.ServiceName+"/"+net.JoinHostPort(h.IP, strconv.Itoa(h.Port))] = h.Healthy
			}
		}
	}
	return out, nil
}

// sample reads one node.
func (o *Observer) sample(ctx context.Context, n *Node, round int) Sample {
	s := Sample{Node: n.Role, Round: round, T0: time.Now().UnixNano()}
	s.Ready = o.Ready(ctx, n.Addr)
	if inst, err := o.Catalog(ctx, n.Addr); err == nil {
		s.OK, s.Inst = true, inst
	}
	s.T1 = time.Now().UnixNano()
	return s
}

// Round samples every node in parallel and records the samples.
func (o *Observer) Round(ctx context.Context, nodes []*Node) []Sample {
	o.mu.Lock()
	o.round++
	r := o.round
	o.mu.Unlock()
	out := make([]Sample, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i] = o.sample(ctx, n, r) })
	}
	wg.Wait()
	o.record(out...)
	return out
}

func (o *Observer) record(s ...Sample) {
	o.mu.Lock()
	o.samples = append(o.samples, s...)
	o.mu.Unlock()
}

// Samples returns a copy of everything recorded so far, in time order.
func (o *Observer) Samples() []Sample {
	o.mu.Lock()
	out := append([]Sample(nil), o.samples...)
	o.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].T0 < out[j].T0 })
	return out
}

// Poll samples nodes() every period until ctx ends.
func (o *Observer) Poll(ctx context.Context, period time.Duration, nodes func() []*Node) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		o.Round(ctx, nodes())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WatchStartup samples a (re)starting node every 50 ms until it has
// answered /readyz 200 for half a second or d has passed: the startup
// gate check (I8) needs its first ready answer and what it served before.
func (o *Observer) WatchStartup(ctx context.Context, n *Node, d time.Duration) {
	end := time.Now().Add(d)
	var readySince time.Time
	for time.Now().Before(end) && ctx.Err() == nil {
		s := o.sample(ctx, n, -1)
		o.record(s)
		if s.Ready == http.StatusOK {
			if readySince.IsZero() {
				readySince = time.Now()
			} else if time.Since(readySince) > 500*time.Millisecond {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Hosts returns the raw "hosts" array of a v1 instance list, the bytes a
// client would see (lastRefTime and other per-node fields excluded).
func (o *Observer) Hosts(ctx context.Context, addr, svc string) (json.RawMessage, error) {
	q := url.Values{"serviceName": {"DEFAULT_GROUP@@" + svc}, "namespaceId": {"public"}}
	st, b, err := o.get(ctx, addr, "/nacos/v1/ns/instance/list?"+q.Encode(), 20*time.Second)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("list %s: status %d", svc, st)
	}
	var r struct {
		Hosts json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return r.Hosts, nil
}

// Services lists the service names on addr whose name contains filter.
func (o *Observer) Services(ctx context.Context, addr, filter string) ([]string, error) {
	q := url.Values{"pageNo": {"1"}, "pageSize": {"10000"}, "serviceNameParam": {filter}}
	st, b, err := o.get(ctx, addr, "/nacos/v1/ns/catalog/services?"+q.Encode(), 5*time.Second)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("services: status %d", st)
	}
	var r struct {
		ServiceList []struct {
			Name string `json:"name"`
		} `json:"serviceList"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range r.ServiceList {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out, nil
}

// Metrics returns the Prometheus samples of addr whose name starts with
// one of prefixes, keyed by the full series text ("name{labels}").
func (o *Observer) Metrics(ctx context.Context, addr string, prefixes ...string) (map[string]float64, error) {
	st, b, err := o.get(ctx, addr, "/metrics", 2*time.Second)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("metrics: status %d", st)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
