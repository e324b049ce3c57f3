package v1

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
// request) wrapped to record each exchange: what the SDK sent and what the
// server answered. Failing tests print it, which is the evidence for server
// bugs. UDP pushes do not go through it.
type recordingAgent struct {
	http_agent.HttpAgent
	log *wireLog
}

func (a *recordingAgent) Request(method, path string, header http.Header, timeoutMs uint64, params map[string]string) (*http.Response, error) {
	start := time.Now()
	resp, err := a.HttpAgent.Request(method, path, header, timeoutMs, params)
	ex := exchange{At: start, Took: time.Since(start), Method: method, URL: path, Params: copyParams(params)}
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
	res := fmt.Sprintf("HTTP %d %q", e.Status, truncate(e.Body, 2048))
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
	mu  sync.Mutex
	exs []exchange
}

const maxExchanges = 400

func (w *wireLog) add(e exchange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exs = append(w.exs, e)
	if len(w.exs) > maxExchanges {
		w.exs = w.exs[len(w.exs)-maxExchanges:]
	}
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

// beats returns the beat exchanges for ip:port that got a 200 answer.
func (w *wireLog) beats(ip string, port uint64) []exchange {
	var out []exchange
	for _, e := range w.snapshot() {
		if e.Method != http.MethodPut || !strings.HasSuffix(e.URL, "/instance/beat") || e.Status != http.StatusOK {
			continue
		}
		var b struct {
			IP   string `json:"ip"`
			Port uint64 `json:"port"`
		}
		if json.Unmarshal([]byte(e.Params["beat"]), &b) == nil && b.IP == ip && b.Port == port {
			out = append(out, e)
		}
	}
	return out
}
