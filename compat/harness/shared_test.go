package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	if got := GroupedName("", "svc"); got != "DEFAULT_GROUP@@svc" {
		t.Errorf("GroupedName(\"\", svc) = %q", got)
	}
	if got := GroupedName("G", "svc"); got != "G@@svc" {
		t.Errorf("GroupedName(G, svc) = %q", got)
	}
	if got := InstanceKey("10.0.0.1", 80, ""); got != "10.0.0.1:80#DEFAULT" {
		t.Errorf("InstanceKey without cluster = %q", got)
	}
	if got := Slug("TestX/sub_test one"); got != "testx-sub-test-one" {
		t.Errorf("Slug = %q", got)
	}
	a, b := UniqueName("v1", "svc"), UniqueName("v1", "svc")
	if a == b || !strings.HasPrefix(a, "v1-svc-") || len(a) != len("v1-svc-")+6 {
		t.Errorf("UniqueName = %q, %q; want distinct v1-svc-<6 hex digits>", a, b)
	}
	if !SameSet([]string{"b", "a"}, []string{"a", "b"}) || SameSet([]string{"a", "a"}, []string{"a"}) || SameSet([]string{"a"}, nil) {
		t.Error("SameSet is wrong")
	}
}

func TestSubscriber(t *testing.T) {
	s := NewSubscriber(func(h string) string { return h })
	s.Callback([]string{"x"}, nil)
	s.Callback([]string{"y", "x"}, nil)
	ev, seen, ok := s.WaitForHosts(time.Second, "x", "y")
	if !ok || len(seen) != 1 || len(ev.Hosts) != 2 {
		t.Fatalf("WaitForHosts(x, y) = %v, seen %v, %v", ev, seen, ok)
	}
	if d := s.Describe(seen); !strings.Contains(d, "hosts=[x] err=<nil>") {
		t.Errorf("Describe = %q", d)
	}
	s.Callback(nil, io.EOF)
	if _, seen, ok := s.WaitForHosts(50 * time.Millisecond); ok || len(seen) != 1 {
		t.Errorf("WaitForHosts() accepted an error callback or dropped it: seen %v, ok %v", seen, ok)
	}
	if s.Describe(nil) != "(no callbacks)" {
		t.Errorf("Describe(nil) = %q", s.Describe(nil))
	}
}

// TestRecordingAgent checks that the v1 SDK's agent, wrapped, still returns
// the answer to the SDK and records the exchange and the answered beat.
func TestRecordingAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"clientBeatInterval":5000}`)
	}))
	defer srv.Close()
	log := &WireLog{}
	a := &recordingAgent{log: log}
	body := a.RequestOnlyResult(http.MethodPut, srv.URL+"/nacos/v1/ns/instance/beat", http.Header{}, 1000,
		map[string]string{"beat": `{"ip":"10.0.0.1","port":80}`})
	if body != `{"clientBeatInterval":5000}` {
		t.Errorf("the SDK got %q", body)
	}
	if n, inFlight, last := log.BeatState("10.0.0.1", 80); n != 1 || inFlight || last.IsZero() {
		t.Errorf("BeatState = %d, %v, %v; want 1 answered, none in flight", n, inFlight, last)
	}
	if n := log.AnsweredBeats("10.0.0.2", 80); n != 0 {
		t.Errorf("AnsweredBeats of another instance = %d", n)
	}
	exs := log.Exchanges()
	if len(exs) != 1 || exs[0].Beat != "10.0.0.1:80" || exs[0].Status != http.StatusOK {
		t.Fatalf("exchanges = %+v", exs)
	}
	if s := log.String(); !strings.Contains(s, "PUT "+srv.URL) || !strings.Contains(s, `beat={"ip":"10.0.0.1","port":80}`) || !strings.Contains(s, "HTTP 200") {
		t.Errorf("String() = %q", s)
	}
}
