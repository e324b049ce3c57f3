package harness

// The HTTP exchange recorder of the v1 SDK clients built by NewV1Client.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/common/http_agent"
)

// recordingAgent is the v1 SDK's own HttpAgent (it still builds and sends
// every request) wrapped to record each exchange in log: which server the
// SDK picked, what it sent and what the server answered. UDP pushes do not
// go through it. It also tracks the beats in flight, so that a test can
// time a deregistration away from the next beat (a beat that arrives after
// the DELETE registers the instance again, as in Nacos).
type recordingAgent struct {
	http_agent.HttpAgent
	log *WireLog
}

func (a *recordingAgent) Request(method, path string, header http.Header, timeoutMs uint64, params map[string]string) (*http.Response, error) {
	start := time.Now()
	beat := beatOf(method, path, params)
	if beat != "" {
		a.log.beatStarted(beat, start)
		defer a.log.beatDone(beat)
	}
	resp, err := a.HttpAgent.Request(method, path, header, timeoutMs, params)
	ex := Exchange{At: start, Took: time.Since(start), Method: method, URL: path, Params: maps.Clone(params), Beat: beat}
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

// beatOf returns "ip:port" of a beat request ("?" if its beat JSON does not
// parse), "" for any other request.
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

// Exchange is one HTTP request of a v1 SDK client and the server's answer.
type Exchange struct {
	At     time.Time
	Took   time.Duration
	Method string
	// URL includes the server the SDK picked.
	URL    string
	Params map[string]string
	Status int
	Body   string
	// Err is the transport error (no answer) or the error reading the body.
	Err string
	// Beat is "ip:port" of a beat request, "" for any other request.
	Beat string
}

// maxBodyShown caps the answer body in Exchange.String.
const maxBodyShown = 2048

func (e Exchange) String() string {
	res := fmt.Sprintf("HTTP %d %q", e.Status, truncate(e.Body, maxBodyShown))
	if e.Err != "" {
		res = "error: " + e.Err
	}
	return fmt.Sprintf("%s %s %s (took %v)\n    params: %s\n    -> %s",
		e.At.Format("15:04:05.000"), e.Method, e.URL, e.Took.Round(100*time.Microsecond), strings.Join(sortedPairs(e.Params), " "), res)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// maxExchanges is how many exchanges a WireLog keeps (the latest).
const maxExchanges = 2000

// WireLog is the record of one v1 client's HTTP exchanges (the latest
// maxExchanges) and of its beats (all of them). Its String is printed when
// a test fails.
type WireLog struct {
	mu       sync.Mutex
	exs      []Exchange
	inFlight map[string]int       // ip:port -> beats sent, not yet answered
	lastBeat map[string]time.Time // ip:port -> start of the last beat
	answered map[string]int       // ip:port -> beats answered 200
}

func (w *WireLog) add(e Exchange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exs = append(w.exs, e)
	if len(w.exs) > maxExchanges {
		w.exs = w.exs[len(w.exs)-maxExchanges:]
	}
	if e.Beat != "" && e.Err == "" && e.Status == http.StatusOK {
		if w.answered == nil {
			w.answered = map[string]int{}
		}
		w.answered[e.Beat]++
	}
}

func (w *WireLog) beatStarted(k string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight == nil {
		w.inFlight, w.lastBeat = map[string]int{}, map[string]time.Time{}
	}
	w.inFlight[k]++
	w.lastBeat[k] = at
}

func (w *WireLog) beatDone(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight[k]--
}

// BeatState reports how many beats for ip:port were answered 200, whether
// one is in flight, and when the last one started.
func (w *WireLog) BeatState(ip string, port uint64) (answered int, inFlight bool, last time.Time) {
	k := fmt.Sprintf("%s:%d", ip, port)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered[k], w.inFlight[k] > 0, w.lastBeat[k]
}

// AnsweredBeats is how many beats for ip:port were answered 200.
func (w *WireLog) AnsweredBeats(ip string, port uint64) int {
	n, _, _ := w.BeatState(ip, port)
	return n
}

// Exchanges returns a copy of the recorded exchanges, oldest first.
func (w *WireLog) Exchanges() []Exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Exchange(nil), w.exs...)
}

func (w *WireLog) String() string {
	var b strings.Builder
	for _, e := range w.Exchanges() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
