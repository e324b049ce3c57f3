package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/common/http_agent"
)

// recordingAgent is the SDK's own HttpAgent (it still builds and sends every
// request) wrapped to record each exchange: which server the SDK picked,
// what it sent and what the server answered. Failing tests print it. It also
// tracks beats in flight, so that a deregistration can be timed away from
// the next beat (a beat that arrives after the DELETE registers again).
type recordingAgent struct {
	http_agent.HttpAgent
	log *wireLog
}

func (a *recordingAgent) Request(method, path string, header http.Header, timeoutMs uint64, params map[string]string) (*http.Response, error) {
	start := time.Now()
	beatKey := beatOf(method, path, params)
	if beatKey != "" {
		a.log.beatStarted(beatKey, start)
		defer a.log.beatDone(beatKey)
	}
	resp, err := a.HttpAgent.Request(method, path, header, timeoutMs, params)
	ex := exchange{At: start, Took: time.Since(start), Method: method, URL: path, Params: copyParams(params), beat: beatKey}
	if err != nil {
		ex.Err = err.Error()
		a.log.add(ex)
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ex.Status, ex.Body = resp.StatusCode, string(body)
	if rerr != nil {
		ex.Err = "reading body: " + rerr.Error()
	}
	a.log.add(ex)
	return resp, nil
}

func (a *recordingAgent) RequestOnlyResult(method, path string, header http.Header, timeoutMs uint64, params map[string]string) string {
	resp, err := a.Request(method, path, header, timeoutMs, params)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// beatOf returns "ip:port" of a beat request, "" for anything else.
func beatOf(method, path string, params map[string]string) string {
	if method != http.MethodPut || !strings.HasSuffix(path, "/instance/beat") {
		return ""
	}
	var b struct {
		IP   string `json:"ip"`
		Port uint64 `json:"port"`
	}
	if json.Unmarshal([]byte(params["beat"]), &b) != nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", b.IP, b.Port)
}

func copyParams(p map[string]string) map[string]string {
	c := make(map[string]string, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

type exchange struct {
	At     time.Time
	Took   time.Duration
	Method string
	URL    string
	Params map[string]string
	Status int
	Body   string
	Err    string
	beat   string
}

func (e exchange) String() string {
	keys := make([]string, 0, len(e.Params))
	for k := range e.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ps []string
	for _, k := range keys {
		ps = append(ps, k+"="+e.Params[k])
	}
	res := fmt.Sprintf("HTTP %d %q", e.Status, truncate(e.Body, 1024))
	if e.Err != "" {
		res = "error: " + e.Err
	}
	return fmt.Sprintf("%s %s %s (took %v)\n    params: %s\n    -> %s",
		e.At.Format("15:04:05.000"), e.Method, e.URL, e.Took.Round(100*time.Microsecond), strings.Join(ps, " "), res)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// wireLog keeps the last maxExchanges exchanges of one client.
type wireLog struct {
	mu       sync.Mutex
	exs      []exchange
	inFlight map[string]int       // ip:port -> beats sent, not yet answered
	lastBeat map[string]time.Time // ip:port -> start of the last beat
	answered map[string]int       // ip:port -> beats answered 200
}

const maxExchanges = 2000

func (w *wireLog) add(e exchange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exs = append(w.exs, e)
	if len(w.exs) > maxExchanges {
		w.exs = w.exs[len(w.exs)-maxExchanges:]
	}
	if e.beat != "" && e.Err == "" && e.Status == http.StatusOK {
		if w.answered == nil {
			w.answered = map[string]int{}
		}
		w.answered[e.beat]++
	}
}

func (w *wireLog) beatStarted(k string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight == nil {
		w.inFlight, w.lastBeat = map[string]int{}, map[string]time.Time{}
	}
	w.inFlight[k]++
	w.lastBeat[k] = at
}

func (w *wireLog) beatDone(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight[k]--
}

// beatState reports the answered beats of ip:port, whether one is in
// flight, and when the last one started.
func (w *wireLog) beatState(k string) (answered int, inFlight bool, last time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered[k], w.inFlight[k] > 0, w.lastBeat[k]
}

func (w *wireLog) snapshot() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]exchange(nil), w.exs...)
}

func (w *wireLog) String() string {
	var b strings.Builder
	for _, e := range w.snapshot() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
