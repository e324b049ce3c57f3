// Command workload is the chaos suite's client load: many simulated Nacos
// v1 clients that register instances, heartbeat them every second with the
// full beat JSON, deregister some and read service lists, each request to a
// random node with failover to the others on error, as the Nacos clients
// do. Every operation goes to a JSON-lines history (package
// chaos/history) for the checker.
//
// The suite runs it inside the lab's client network namespace and steers it
// with one command per line on stdin, answered on stdout:
//
//	quiesce              stop churn and reads (heartbeats go on)
//	resume               start them again
//	stopbeat N           N random instances stop beating, not deregistered
//	dereg N [NODE]       deregister N random instances (only through NODE if given)
//	dereg-persistent N [NODE]  deregister N of the --persistent instances
//	nodes A,B,...        replace the server list
//	stop                 end, flush the history, exit
//
// It prints "ready" once every initial instance has been registered, and
// "ok <command>" when a command is done. It stands alone (stdlib only) and
// bounds itself in time (--max-duration).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/distro-registry/distro/chaos/history"
)

type config struct {
	nodes         []string
	clients       int
	instances     int
	services      int
	seed          uint64
	historyPath   string
	timeout       time.Duration
	beatInterval  time.Duration
	hbTimeoutMs   int
	delTimeoutMs  int
	churn         float64
	reads         float64
	maxDuration   time.Duration
	bulk          int
	bulkServices  int
	bulkMeta      int
	bulkParallel  int
	persistent    int
	servicePrefix string
}

func main() {
	var c config
	var nodes string
	flag.StringVar(&nodes, "nodes", "", "comma-separated node addresses ip:port")
	flag.IntVar(&c.clients, "clients", 20, "simulated clients")
	flag.IntVar(&c.instances, "instances", 200, "instances kept registered (spread over the clients)")
	flag.IntVar(&c.services, "services", 20, "services the instances belong to")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.StringVar(&c.historyPath, "history", "history.jsonl", "history output file")
	flag.DurationVar(&c.timeout, "timeout", 2500*time.Millisecond, "per-attempt request timeout")
	flag.DurationVar(&c.beatInterval, "beat-interval", time.Second, "heartbeat period")
	flag.IntVar(&c.hbTimeoutMs, "hb-timeout-ms", 3000, "preserved.heart.beat.timeout")
	flag.IntVar(&c.delTimeoutMs, "delete-timeout-ms", 6000, "preserved.ip.delete.timeout")
	flag.Float64Var(&c.churn, "churn", 0.3, "per client and second, probability of replacing one instance (deregister + register a new one)")
	flag.Float64Var(&c.reads, "reads", 1, "list reads per client and second")
	flag.DurationVar(&c.maxDuration, "max-duration", 15*time.Minute, "hard bound on the run")
	flag.IntVar(&c.bulk, "bulk", 0, "durable instances registered before the run (large-snapshot scenario)")
	flag.IntVar(&c.bulkServices, "bulk-services", 50, "services of the bulk instances")
	flag.IntVar(&c.bulkMeta, "bulk-meta", 4096, "metadata bytes per bulk instance")
	flag.IntVar(&c.bulkParallel, "bulk-parallel", 16, "concurrent bulk registrations")
	flag.IntVar(&c.persistent, "persistent", 0, "persistent instances (ephemeral=false, no heartbeats) registered before the run, in services <prefix>pNN")
	flag.StringVar(&c.servicePrefix, "service-prefix", "chaos-svc-", "name prefix of the workload's services")
	flag.Parse()
	c.nodes = splitList(nodes)
	if len(c.nodes) == 0 || c.clients < 1 || c.instances < c.clients || c.services < 1 {
		fmt.Fprintln(os.Stderr, "workload: need --nodes, and --instances >= --clients >= 1")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// out serializes stdout lines (acks) between goroutines.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func run(c config) error {
	f, err := os.Create(c.historyPath)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &workload{cfg: c, hist: history.NewWriter(f), rng: rand.New(rand.NewPCG(c.seed, 0x9e3779b97f4a7c15))}
	w.nodes.Store(&c.nodes)
	w.churnOn.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), c.maxDuration)
	defer cancel()
	ctx, stopSig := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSig()
	w.ctx = ctx

	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = w.hist.Flush()
			}
		}
	}()

	if c.bulk > 0 {
		w.registerBulk()
	}
	if c.persistent > 0 {
		w.registerPersistent()
	}
	w.start()
	say("ready")

	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds)
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			say("stopping: %v", context.Cause(ctx))
			break loop
		case cmd, ok := <-cmds:
			if !ok || cmd == "stop" {
				break loop
			}
			if err := w.command(cmd); err != nil {
				say("error %s: %v", cmd, err)
				continue
			}
			say("ok %s", cmd)
		}
	}
	cancel()
	w.wg.Wait()
	<-flushDone
	if err := w.hist.Flush(); err != nil {
		return err
	}
	say("stopped")
	return nil
}

type workload struct {
	cfg     config
	ctx     context.Context
	hist    *history.Writer
	nodes   atomic.Pointer[[]string]
	churnOn atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	rng     *rand.Rand
	clients []*client
	// persistent holds the persistent instances not deregistered yet.
	persistent []*instance
}

// client is one simulated application process: its own connection pool,
// its own instances.
type client struct {
	w     *workload
	id    int
	httpc *http.Client
	rng   *rand.Rand // guarded by mu
	mu    sync.Mutex
	next  int // instance counter, for unique (ip, port)
	live  []*instance
}

// instance is one registration and the goroutine that keeps it alive.
type instance struct {
	c        *client
	svc      string
	ip       string
	port     int
	metadata map[string]string
	durable  bool
	// persistent: registered with ephemeral=false and never beaten.
	persistent bool
	// end tells the beat loop how to finish: deregister (through node, or
	// any node if empty) or just stop beating.
	end  chan endReq
	done chan struct{}
}

type endReq struct {
	dereg bool
	node  string
}

func (in *instance) addr() string { return net.JoinHostPort(in.ip, strconv.Itoa(in.port)) }

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr}
}

func (w *workload) start() {
	per := w.cfg.instances / w.cfg.clients
	extra := w.cfg.instances % w.cfg.clients
	var ready sync.WaitGroup
	for id := range w.cfg.clients {
		c := &client{w: w, id: id, httpc: newHTTPClient(), rng: rand.New(rand.NewPCG(w.cfg.seed, uint64(id)+1))}
		w.clients = append(w.clients, c)
		n := per
		if id < extra {
			n++
		}
		for range n {
			ready.Add(1)
			c.spawn(func() { ready.Done() })
		}
	}
	ready.Wait()
	for _, c := range w.clients {
		w.wg.Go(c.loop)
	}
}

// spawn starts a new instance of c; registered is called after its first
// registration attempt.
func (c *client) spawn(registered func()) {
	c.mu.Lock()
	n := c.next
	c.next++
	svc := c.w.cfg.servicePrefix + fmt.Sprintf("%02d", (c.id*7+n)%c.w.cfg.services)
	in := &instance{c: c, svc: svc, ip: fmt.Sprintf("10.77.%d.%d", c.id, n%250+1), port: 20000 + n/250,
		end: make(chan endReq, 1), done: make(chan struct{})}
	in.metadata = map[string]string{
		"preserved.heart.beat.timeout":  strconv.Itoa(c.w.cfg.hbTimeoutMs),
		"preserved.ip.delete.timeout":   strconv.Itoa(c.w.cfg.delTimeoutMs),
		"preserved.heart.beat.interval": strconv.Itoa(int(c.w.cfg.beatInterval.Milliseconds())),
		"client":                        strconv.Itoa(c.id),
	}
	c.live = append(c.live, in)
	c.mu.Unlock()
	c.w.wg.Go(func() { in.run(registered) })
}

// loop is the client's churn and read schedule.
func (c *client) loop() {
	ctx := c.w.ctx
	// Spread the clients over the second.
	c.mu.Lock()
	off := time.Duration(c.rng.Int64N(int64(time.Second)))
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return
	case <-time.After(off):
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var reads float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.w.churnOn.Load() {
			continue
		}
		c.mu.Lock()
		churn := c.rng.Float64() < c.w.cfg.churn && len(c.live) > 0
		var victim *instance
		if churn {
			victim = c.live[c.rng.IntN(len(c.live))]
		}
		c.mu.Unlock()
		if victim != nil {
			// Replace it in the background: a slow deregistration must not
			// hold up this client's reads.
			c.w.wg.Go(func() {
				// No replacement once writes are quiesced: the checker's final
				// window must see no new registration.
				if victim.finish(endReq{dereg: true}) && c.w.ctx.Err() == nil && c.w.churnOn.Load() {
					c.spawn(nil)
				}
			})
		}
		for reads += c.w.cfg.reads; reads >= 1; reads-- {
			c.w.wg.Go(c.read)
		}
	}
}

// finish asks in's goroutine to end and waits for it. It reports false if
// the instance had already been told to end.
func (in *instance) finish(r endReq) bool {
	c := in.c
	c.mu.Lock()
	i := slices.Index(c.live, in)
	if i < 0 {
		c.mu.Unlock()
		return false
	}
	c.live = slices.Delete(c.live, i, i+1)
	c.mu.Unlock()
	in.end <- r
	select {
	case <-in.done:
	case <-c.w.ctx.Done():
	}
	return true
}

func (in *instance) run(registered func()) {
	defer close(in.done)
	w := in.c.w
	w.do(in.c, history.Register, in, "")
	if registered != nil {
		registered()
	}
	t := time.NewTicker(w.cfg.beatInterval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case r := <-in.end:
			if !r.dereg {
				now := time.Now().UnixNano()
				w.hist.Add(&history.Op{T0: now, T1: now, Client: in.c.id, Kind: history.StopBeat, Service: in.svc, Instance: in.addr(), OK: true})
				return
			}
			// Retry a failed deregistration a few times, as an application
			// shutting down would.
			for try := 0; try < 5 && w.ctx.Err() == nil; try++ {
				if w.do(in.c, history.Deregister, in, r.node).OK {
					return
				}
				time.Sleep(time.Second)
			}
			return
		case <-t.C:
			w.do(in.c, history.Beat, in, "")
		}
	}
}

func (c *client) read() {
	c.mu.Lock()
	svc := c.w.cfg.servicePrefix + fmt.Sprintf("%02d", c.rng.IntN(c.w.cfg.services))
	c.mu.Unlock()
	c.w.do(c, history.List, &instance{svc: svc}, "")
}

func (w *workload) command(cmd string) error {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return errors.New("empty command")
	}
	switch f[0] {
	case "quiesce":
		w.churnOn.Store(false)
	case "resume":
		w.churnOn.Store(true)
	case "nodes":
		if len(f) != 2 || len(splitList(f[1])) == 0 {
			return errors.New("usage: nodes a,b,c")
		}
		l := splitList(f[1])
		w.nodes.Store(&l)
	case "dereg-persistent":
		if len(f) < 2 {
			return errors.New("usage: dereg-persistent N [node]")
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			return fmt.Errorf("bad count %q", f[1])
		}
		node := ""
		if len(f) > 2 {
			node = f[2]
		}
		w.mu.Lock()
		w.rng.Shuffle(len(w.persistent), func(i, j int) { w.persistent[i], w.persistent[j] = w.persistent[j], w.persistent[i] })
		n = min(n, len(w.persistent))
		victims := slices.Clone(w.persistent[:n])
		w.persistent = w.persistent[n:]
		w.mu.Unlock()
		var wg sync.WaitGroup
		for _, in := range victims {
			wg.Go(func() {
				for try := 0; try < 3 && w.ctx.Err() == nil; try++ {
					if w.do(nil, history.Deregister, in, node).OK {
						return
					}
					time.Sleep(time.Second)
				}
			})
		}
		wg.Wait()
	case "stopbeat", "dereg":
		if len(f) < 2 {
			return errors.New("usage: " + f[0] + " N [node]")
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			return fmt.Errorf("bad count %q", f[1])
		}
		r := endReq{dereg: f[0] == "dereg"}
		if len(f) > 2 {
			r.node = f[2]
		}
		var wg sync.WaitGroup
		for _, in := range w.pick(n) {
			wg.Go(func() { in.finish(r) })
		}
		wg.Wait()
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

// pick chooses n distinct live instances with the workload's seeded RNG.
func (w *workload) pick(n int) []*instance {
	var all []*instance
	for _, c := range w.clients {
		c.mu.Lock()
		all = append(all, c.live...)
		c.mu.Unlock()
	}
	w.mu.Lock()
	w.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	w.mu.Unlock()
	return all[:min(n, len(all))]
}

// do performs one operation with failover and records it. With node set,
// only that node is tried.
func (w *workload) do(c *client, kind string, in *instance, node string) *history.Op {
	op := &history.Op{T0: time.Now().UnixNano(), Client: -1, Kind: kind, Service: in.svc, Durable: in.durable, Persistent: in.persistent}
	if c != nil {
		op.Client = c.id
	}
	if kind != history.List {
		op.Instance = in.addr()
	}
	nodes := *w.nodes.Load()
	order := []string{node}
	if node == "" {
		start := 0
		if c != nil {
			c.mu.Lock()
			start = c.rng.IntN(len(nodes))
			c.mu.Unlock()
		}
		order = append(nodes[start:len(nodes):len(nodes)], nodes[:start]...)
	}
	httpc := http.DefaultClient
	if c != nil {
		httpc = c.httpc
	}
	for _, n := range order {
		a, body := w.attempt(httpc, n, kind, in)
		op.Attempts = append(op.Attempts, a)
		if a.Err == "" {
			op.OK = true
			decode(op, body)
			break
		}
		if a.Err == history.ErrStatus && a.Status >= 400 && a.Status < 500 {
			break // a definite answer: another node would say the same
		}
		if w.ctx.Err() != nil {
			break
		}
	}
	op.T1 = time.Now().UnixNano()
	w.hist.Add(op)
	return op
}

func decode(op *history.Op, body []byte) {
	switch op.Kind {
	case history.Beat:
		var r struct {
			Code int `json:"code"`
		}
		if json.Unmarshal(body, &r) == nil {
			op.BeatCode = r.Code
		}
	case history.List:
		var r struct {
			Hosts []struct {
				IP      string `json:"ip"`
				Port    int    `json:"port"`
				Healthy bool   `json:"healthy"`
			} `json:"hosts"`
		}
		if json.Unmarshal(body, &r) == nil {
			for _, h := range r.Hosts {
				a := net.JoinHostPort(h.IP, strconv.Itoa(h.Port))
				op.Hosts = append(op.Hosts, a)
				if !h.Healthy {
					op.Unhealthy = append(op.Unhealthy, a)
				}
			}
		}
	}
}

const group = "DEFAULT_GROUP"

func (w *workload) attempt(httpc *http.Client, node, kind string, in *instance) (history.Attempt, []byte) {
	a := history.Attempt{Node: node}
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.timeout)
	defer cancel()
	p := url.Values{"serviceName": {group + "@@" + in.svc}, "groupName": {group}, "namespaceId": {"public"}}
	method, path := http.MethodGet, "/nacos/v1/ns/instance/list"
	var body io.Reader
	switch kind {
	case history.Register:
		method, path = http.MethodPost, "/nacos/v1/ns/instance"
		md, _ := json.Marshal(in.metadata)
		p.Set("ip", in.ip)
		p.Set("port", strconv.Itoa(in.port))
		p.Set("weight", "1")
		p.Set("enabled", "true")
		p.Set("healthy", "true")
		p.Set("ephemeral", strconv.FormatBool(!in.persistent))
		p.Set("clusterName", "DEFAULT")
		p.Set("metadata", string(md))
	case history.Beat:
		method, path = http.MethodPut, "/nacos/v1/ns/instance/beat"
		beat, _ := json.Marshal(map[string]any{"cluster": "DEFAULT", "ip": in.ip, "port": in.port, "metadata": in.metadata,
			"scheduled": false, "serviceName": group + "@@" + in.svc, "weight": 1.0, "period": w.cfg.beatInterval.Milliseconds()})
		p.Set("beat", string(beat))
		p.Set("ip", in.ip)
		p.Set("port", strconv.Itoa(in.port))
		p.Set("clusterName", "DEFAULT")
	case history.Deregister:
		method, path = http.MethodDelete, "/nacos/v1/ns/instance"
		p.Set("ip", in.ip)
		p.Set("port", strconv.Itoa(in.port))
		p.Set("clusterName", "DEFAULT")
		p.Set("ephemeral", strconv.FormatBool(!in.persistent))
	}
	u := "http://" + node + path
	if method == http.MethodGet || method == http.MethodDelete {
		u += "?" + p.Encode()
	} else {
		body = strings.NewReader(p.Encode())
	}
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		a.Err = history.ErrOther
		return a, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "Nacos-Go-Client:v1.1.6") // as the SDK, for push-capable detection paths
	resp, err := httpc.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		a.Status = resp.StatusCode
	}
	a.Micros = time.Since(t0).Microseconds()
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		a.Err = history.ErrTimeout
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		a.Err = history.ErrRefused
	case err != nil:
		a.Err = history.ErrOther
	case a.Status != http.StatusOK:
		a.Err = history.ErrStatus
	}
	return a, b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// registerBulk registers the durable bulk instances with large metadata,
// cfg.bulkParallel at a time.
func (w *workload) registerBulk() {
	c := w.cfg
	blob := make([]byte, 1024)
	r := rand.New(rand.NewPCG(c.seed, 77))
	for i := range blob {
		blob[i] = 'a' + byte(r.IntN(26))
	}
	md := map[string]string{
		"preserved.heart.beat.timeout": "600000",
		"preserved.ip.delete.timeout":  "600000",
	}
	for i := 0; i*1024 < c.bulkMeta-256; i++ {
		md[fmt.Sprintf("blob%02d", i)] = string(blob[:min(1024, c.bulkMeta-256-i*1024)])
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range c.bulkParallel {
		hc := newHTTPClient()
		cl := &client{w: w, id: -1, httpc: hc, rng: rand.New(rand.NewPCG(c.seed, 99))}
		wg.Go(func() {
			for i := range jobs {
				in := &instance{svc: fmt.Sprintf("chaos-bulk-%03d", i%c.bulkServices), ip: fmt.Sprintf("10.99.%d.%d", i/250, i%250+1),
					port: 30000, metadata: md, durable: true}
				for try := 0; try < 3 && w.ctx.Err() == nil; try++ {
					if w.do(cl, history.Register, in, "").OK {
						break
					}
				}
			}
		})
	}
	for i := range c.bulk {
		if w.ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// registerPersistent registers the persistent instances, spread over five
// services of their own.
func (w *workload) registerPersistent() {
	for i := range w.cfg.persistent {
		in := &instance{svc: w.cfg.servicePrefix + fmt.Sprintf("p%02d", i%5), ip: fmt.Sprintf("10.98.%d.%d", i/250, i%250+1),
			port: 31000, persistent: true, metadata: map[string]string{"kind": "persistent"}}
		for try := 0; try < 3 && w.ctx.Err() == nil; try++ {
			if w.do(nil, history.Register, in, "").OK {
				break
			}
		}
		w.persistent = append(w.persistent, in)
	}
}
