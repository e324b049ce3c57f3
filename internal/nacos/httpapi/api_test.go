package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

type listResp struct {
	Name                     string `json:"name"`
	GroupName                string `json:"groupName"`
	Clusters                 string `json:"clusters"`
	CacheMillis              int64  `json:"cacheMillis"`
	LastRefTime              int64  `json:"lastRefTime"`
	ReachProtectionThreshold bool   `json:"reachProtectionThreshold"`
	Hosts                    []struct {
		InstanceID  string            `json:"instanceId"`
		IP          string            `json:"ip"`
		Port        int               `json:"port"`
		Weight      float64           `json:"weight"`
		Healthy     bool              `json:"healthy"`
		Enabled     bool              `json:"enabled"`
		Ephemeral   bool              `json:"ephemeral"`
		ClusterName string            `json:"clusterName"`
		ServiceName string            `json:"serviceName"`
		Metadata    map[string]string `json:"metadata"`
	} `json:"hosts"`
}

func (h *harness) list(t *testing.T, rawQuery string) listResp {
	t.Helper()
	var lr listResp
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?"+rawQuery, ""), &lr)
	return lr
}

func TestRegisterGoSDKFormBody(t *testing.T) {
	h := newHarness(t)
	// What nacos-sdk-go v1 sends: every value URL-encoded, empty values kept.
	form := url.Values{
		"serviceName": {"DEFAULT_GROUP@@demo"}, "groupName": {"DEFAULT_GROUP"}, "namespaceId": {""},
		"ip": {"10.0.0.1"}, "port": {"8080"}, "weight": {"2"}, "enable": {"true"}, "healthy": {"true"},
		"ephemeral": {"true"}, "clusterName": {""}, "app": {""},
		"metadata": {`{"version":"1.0","num":3,"ok":true,"note":"a+b & c=d %"}`},
	}
	w := h.mustDo(t, "POST", "/nacos/v1/ns/instance", form.Encode())
	if w.Body.String() != "ok" {
		t.Fatalf("body %q", w.Body.String())
	}
	v := h.st.View(demo)
	if v == nil || len(v.Instances) != 1 {
		t.Fatalf("view %+v", v)
	}
	in := v.Instances[0]
	if in.IP != "10.0.0.1" || in.Port != 8080 || in.Weight != 2 || !in.Enabled || !in.Healthy || !in.Ephemeral ||
		in.Cluster != "DEFAULT" || in.Metadata["version"] != "1.0" || in.Metadata["num"] != "3" ||
		in.Metadata["ok"] != "true" || in.Metadata["note"] != "a+b & c=d %" {
		t.Fatalf("instance %+v", in)
	}
}

func TestRegisterNodeStyleQuery(t *testing.T) {
	h := newHarness(t)
	// nacos-naming (Node): every parameter in the query, encoded, no body.
	q := url.Values{
		"serviceName": {"orders"}, "groupName": {"G1"}, "namespaceId": {"public"}, "ip": {"10.0.0.2"},
		"port": {"9000"}, "clusterName": {"c1"}, "enable": {"false"}, "metadata": {"k=v,k2=v2"},
	}
	h.mustDo(t, "POST", "/nacos/v1/ns/instance?"+q.Encode(), "")
	k := model.ServiceKey{Namespace: "public", Group: "G1", Name: "orders"}
	recs, _ := h.st.Records(k, nil)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	in := recs[0].Instance
	if in.Cluster != "c1" || in.Enabled || in.Metadata["k2"] != "v2" || in.Weight != 1 {
		t.Fatalf("instance %+v", in)
	}
	// Disabled instances are never returned.
	if lr := h.list(t, "serviceName=G1@@orders"); len(lr.Hosts) != 0 {
		t.Fatalf("disabled instance listed: %+v", lr.Hosts)
	}
	// The "cluster" parameter is the fallback for clusterName.
	h.mustDo(t, "POST", "/nacos/v1/ns/instance?serviceName=G1@@orders&ip=10.0.0.3&port=1&cluster=c2", "")
	if recs, _ := h.st.Records(k, []model.InstanceKey{{IP: "10.0.0.3", Port: 1, Cluster: "c2"}}); len(recs) != 1 {
		t.Fatal("cluster fallback not used")
	}
}

func TestListEchoesNameAndClusters(t *testing.T) {
	h := newHarness(t)
	h.register(t, "DEFAULT_GROUP%40%40demo", "10.0.0.1", 80, "clusterName=a&metadata=%7B%22k%22%3A%22v%22%7D")
	h.register(t, "DEFAULT_GROUP%40%40demo", "10.0.0.2", 80, "clusterName=b&weight=0.5")
	h.register(t, "DEFAULT_GROUP%40%40demo", "10.0.0.3", 80, "clusterName=c")

	// The Go SDK's GET: raw, unencoded query in random order.
	lr := h.list(t, "udpPort=0&healthyOnly=false&clusters=a,b&serviceName=DEFAULT_GROUP@@demo&namespaceId=&clientIP=192.0.2.2")
	if lr.Name != "DEFAULT_GROUP@@demo" || lr.Clusters != "a,b" || lr.GroupName != "DEFAULT_GROUP" || lr.CacheMillis != 10000 || lr.LastRefTime <= 0 {
		t.Fatalf("header %+v", lr)
	}
	if len(lr.Hosts) != 2 || lr.Hosts[0].IP != "10.0.0.1" || lr.Hosts[1].IP != "10.0.0.2" {
		t.Fatalf("hosts %+v", lr.Hosts)
	}
	if lr.Hosts[0].Metadata["k"] != "v" || lr.Hosts[1].Weight != 0.5 || lr.Hosts[0].ServiceName != "DEFAULT_GROUP@@demo" ||
		lr.Hosts[0].InstanceID != "10.0.0.1#80#a#DEFAULT_GROUP@@demo" {
		t.Fatalf("hosts %+v", lr.Hosts)
	}
	// The echo is exact, spaces and order included.
	if lr := h.list(t, "serviceName=DEFAULT_GROUP@@demo&clusters=b,%20a"); lr.Clusters != "b, a" || len(lr.Hosts) != 2 {
		t.Fatalf("clusters echo %+v", lr)
	}
	// A bare name with groupName is echoed as given... grouped.
	if lr := h.list(t, "serviceName=demo"); lr.Name != "DEFAULT_GROUP@@demo" || lr.Clusters != "" || len(lr.Hosts) != 3 {
		t.Fatalf("all clusters %+v", lr)
	}
	// Repeated reads of an unchanged service are served from the render cache.
	w1 := h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@demo&clusters=a,b", "")
	w2 := h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@demo&clusters=a,b", "")
	if w1.Body.String() != w2.Body.String() {
		t.Fatal("same revision, different answers")
	}
}

func TestListUnknownService(t *testing.T) {
	h := newHarness(t)
	w := h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@nothing&clusters=x", "")
	if !strings.Contains(w.Body.String(), `"hosts":[]`) {
		t.Fatalf("body %s", w.Body.String())
	}
	var lr listResp
	decodeJSON(t, w, &lr)
	// lastRefTime 0 is below every real revision: the client takes the
	// first list of the service when it appears.
	if lr.Name != "DEFAULT_GROUP@@nothing" || lr.Clusters != "x" || lr.LastRefTime != 0 {
		t.Fatalf("%+v", lr)
	}
	if h.st.View(model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "nothing"}) != nil {
		t.Fatal("a read created a service")
	}
}

func TestListHealthyOnlyAndProtect(t *testing.T) {
	h := newHarness(t)
	h.register(t, "demo", "10.0.0.1", 80, "")
	h.register(t, "demo", "10.0.0.2", 80, "healthy=false")
	if lr := h.list(t, "serviceName=demo&healthyOnly=true"); len(lr.Hosts) != 1 || lr.ReachProtectionThreshold {
		t.Fatalf("healthyOnly %+v", lr)
	}
	h.mustDo(t, "PUT", "/nacos/v1/ns/service", "serviceName=demo&protectThreshold=0.5")
	lr := h.list(t, "serviceName=demo&healthyOnly=true")
	if !lr.ReachProtectionThreshold || len(lr.Hosts) != 2 || !lr.Hosts[1].Healthy {
		t.Fatalf("protect %+v", lr)
	}
}

func TestListSubscribes(t *testing.T) {
	h := newHarness(t)
	h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@demo&clusters=a&udpPort=54951&clientIP=192.0.2.2", "",
		"User-Agent", "Nacos-Go-Client:v1.1.6")
	// From loopback, push goes back over loopback.
	req := httptestRequest("GET", "/nacos/v1/ns/instance/list?serviceName=demo&udpPort=55000&clientIP=192.0.2.2")
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("User-Agent", "Nacos-Java-Client:v1.0.0")
	h.serve(req)
	// No udpPort, or a bad one: no subscription.
	h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=demo&udpPort=0", "")
	h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=demo&udpPort=70000", "")
	want := []subscription{
		{demo, "a", netip.MustParseAddrPort("192.0.2.2:54951"), "Nacos-Go-Client:v1.1.6"},
		{demo, "", netip.MustParseAddrPort("127.0.0.1:55000"), "Nacos-Java-Client:v1.0.0"},
	}
	if len(h.push.subs) != len(want) {
		t.Fatalf("subscriptions %+v", h.push.subs)
	}
	for i := range want {
		if h.push.subs[i] != want[i] {
			t.Errorf("subscription %d = %+v, want %+v", i, h.push.subs[i], want[i])
		}
	}
}

func TestDeregisterRawQuery(t *testing.T) {
	h := newHarness(t)
	h.register(t, "DEFAULT_GROUP%40%40demo", "10.0.0.1", 80, "")
	h.register(t, "DEFAULT_GROUP%40%40demo", "10.0.0.2", 80, "")
	w := h.mustDo(t, "DELETE", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80&clusterName=DEFAULT&ephemeral=true&namespaceId=", "")
	if w.Body.String() != "ok" {
		t.Fatalf("body %q", w.Body.String())
	}
	if lr := h.list(t, "serviceName=DEFAULT_GROUP@@demo"); len(lr.Hosts) != 1 || lr.Hosts[0].IP != "10.0.0.2" {
		t.Fatalf("after deregister %+v", lr.Hosts)
	}
	// Unknown instance or service: still ok.
	h.mustDo(t, "DELETE", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.9&port=80", "")
	h.mustDo(t, "DELETE", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@none&ip=10.0.0.9&port=80", "")
}

type beatResp struct {
	ClientBeatInterval *int64 `json:"clientBeatInterval"`
	Code               int    `json:"code"`
	LightBeatEnabled   *bool  `json:"lightBeatEnabled"`
}

func (h *harness) beat(t *testing.T, target, body string) beatResp {
	t.Helper()
	var br beatResp
	decodeJSON(t, h.mustDo(t, "PUT", target, body), &br)
	if br.ClientBeatInterval == nil || br.LightBeatEnabled == nil || !*br.LightBeatEnabled {
		t.Fatalf("beat response lacks fields: %+v", br)
	}
	return br
}

func TestBeatGoSDKRawBody(t *testing.T) {
	h := newHarness(t)
	// nacos-sdk-go v1 sends the PUT body unencoded, empty values dropped.
	body := `serviceName=DEFAULT_GROUP@@demo&beat={"cluster":"DEFAULT","ip":"10.0.0.1","metadata":{"load":"50%","x":"1"},"period":5000,"port":8080,"scheduled":false,"serviceName":"DEFAULT_GROUP@@demo","stopped":false,"weight":1}`
	br := h.beat(t, "/nacos/v1/ns/instance/beat", body)
	if *br.ClientBeatInterval != 5000 || br.Code != 10200 {
		t.Fatalf("beat %+v", br)
	}
	// The beat registered the unknown instance, stray '%' and all.
	lr := h.list(t, "serviceName=DEFAULT_GROUP@@demo")
	if len(lr.Hosts) != 1 || lr.Hosts[0].Port != 8080 || lr.Hosts[0].Metadata["load"] != "50%" || lr.Hosts[0].Metadata["x"] != "1" {
		t.Fatalf("after beat %+v", lr.Hosts)
	}
	rev := h.st.View(demo).Revision
	// Beating again changes nothing visible.
	h.beat(t, "/nacos/v1/ns/instance/beat", body)
	if h.st.View(demo).Revision != rev {
		t.Fatal("a beat made a new revision")
	}
	// A custom interval in metadata is told back.
	body2 := `serviceName=DEFAULT_GROUP@@demo&beat={"ip":"10.0.0.2","port":81,"metadata":{"preserved.heart.beat.interval":"1000"}}`
	if br := h.beat(t, "/nacos/v1/ns/instance/beat", body2); *br.ClientBeatInterval != 1000 {
		t.Fatalf("interval %d", *br.ClientBeatInterval)
	}
}

func TestBeatVariants(t *testing.T) {
	h := newHarness(t)
	// Light beat (1.x Java) for an unknown instance: 200 with code 20404.
	br := h.beat(t, "/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80", "")
	if br.Code != 20404 || *br.ClientBeatInterval != 5000 {
		t.Fatalf("light beat for unknown %+v", br)
	}
	if h.st.View(demo) != nil {
		t.Fatal("light beat created the service")
	}
	// Node: params in the query, beat JSON encoded; ip/port come from the beat.
	q := url.Values{"serviceName": {"DEFAULT_GROUP@@demo"}, "ip": {"1.1.1.1"}, "port": {"1"},
		"beat": {`{"ip":"10.0.0.1","port":80,"cluster":"","weight":1,"metadata":null}`}, "clusterName": {"c9"}}
	br = h.beat(t, "/nacos/v1/ns/instance/beat?"+q.Encode(), "")
	if br.Code != 10200 {
		t.Fatalf("Node beat %+v", br)
	}
	// Blank beat cluster falls back to clusterName.
	if recs, _ := h.st.Records(demo, []model.InstanceKey{{IP: "10.0.0.1", Port: 80, Cluster: "c9"}}); len(recs) != 1 {
		t.Fatal("beat did not register 10.0.0.1:80 in c9")
	}
	// Now the light beat finds it.
	br = h.beat(t, "/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80&clusterName=c9", "")
	if br.Code != 10200 {
		t.Fatalf("light beat for known %+v", br)
	}
	// A beat JSON with a "+" inside (form decoding turns it into a space, as
	// Nacos does) and without ip falls back to the ip parameter.
	body := `serviceName=demo&ip=10.0.0.5&beat={"port":85,"metadata":{"a":"x+y"}}`
	h.beat(t, "/nacos/v1/ns/instance/beat", body)
	recs, _ := h.st.Records(demo, []model.InstanceKey{{IP: "10.0.0.5", Port: 85, Cluster: "DEFAULT"}})
	if len(recs) != 1 || recs[0].Instance.Metadata["a"] != "x y" {
		t.Fatalf("beat with '+' %+v", recs)
	}
}

func TestInstanceDetail(t *testing.T) {
	h := newHarness(t)
	w := h.do(t, "GET", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80", "")
	if w.Code != http.StatusNotFound || w.Body.String() != "no ips found for cluster DEFAULT in service DEFAULT_GROUP@@demo" {
		t.Fatalf("missing service: %d %q", w.Code, w.Body.String())
	}
	h.register(t, "demo", "10.0.0.1", 80, "metadata=a%3Db&weight=3")
	w = h.do(t, "GET", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.2&port=80", "")
	if w.Code != http.StatusNotFound || w.Body.String() != "no matched ip found!" {
		t.Fatalf("missing ip: %d %q", w.Code, w.Body.String())
	}
	var d struct {
		Service     string            `json:"service"`
		IP          string            `json:"ip"`
		Port        int               `json:"port"`
		ClusterName string            `json:"clusterName"`
		Weight      float64           `json:"weight"`
		Healthy     bool              `json:"healthy"`
		InstanceID  string            `json:"instanceId"`
		Metadata    map[string]string `json:"metadata"`
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/instance?serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80&clusterName=DEFAULT", ""), &d)
	if d.Service != "DEFAULT_GROUP@@demo" || d.IP != "10.0.0.1" || d.Port != 80 || d.ClusterName != "DEFAULT" || d.Weight != 3 ||
		!d.Healthy || d.InstanceID != "10.0.0.1#80#DEFAULT#DEFAULT_GROUP@@demo" || d.Metadata["a"] != "b" {
		t.Fatalf("detail %+v", d)
	}
}

func TestUpdateAndPatchInstance(t *testing.T) {
	h := newHarness(t)
	w := h.do(t, "PUT", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.1&port=80&weight=2")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "service not found") {
		t.Fatalf("update of a missing service: %d %q", w.Code, w.Body.String())
	}
	h.register(t, "demo", "10.0.0.1", 80, "metadata=a%3D1")
	// The Go SDK's PUT body: unencoded JSON metadata.
	h.mustDo(t, "PUT", "/nacos/v1/ns/instance", `serviceName=DEFAULT_GROUP@@demo&ip=10.0.0.1&port=80&weight=2&enable=false&metadata={"b":"2"}`)
	in := h.st.View(demo).Instances[0]
	if in.Weight != 2 || in.Enabled || in.Metadata["b"] != "2" || in.Metadata["a"] != "" {
		t.Fatalf("after update %+v", in)
	}
	// PATCH changes only what is given.
	h.mustDo(t, "PATCH", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.1&port=80&enabled=true")
	in = h.st.View(demo).Instances[0]
	if in.Weight != 2 || !in.Enabled || in.Metadata["b"] != "2" {
		t.Fatalf("after patch %+v", in)
	}
	w = h.do(t, "PATCH", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.9&port=80&weight=1")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "instance not found") {
		t.Fatalf("patch of a missing instance: %d %q", w.Code, w.Body.String())
	}
}

func TestServiceCRUD(t *testing.T) {
	h := newHarness(t)
	expect := func(method, target, body string, code int, text string) {
		t.Helper()
		w := h.do(t, method, target, body)
		if w.Code != code || !strings.Contains(w.Body.String(), text) {
			t.Fatalf("%s %s %s: %d %q, want %d containing %q", method, target, body, w.Code, w.Body.String(), code, text)
		}
	}
	const svc = "/nacos/v1/ns/service"
	expect("GET", svc+"?serviceName=demo", "", 400, "is not found")
	expect("PUT", svc, "serviceName=demo&protectThreshold=0.5", 400, "not found")
	expect("DELETE", svc+"?serviceName=demo", "", 400, "not exist")

	expect("POST", svc, `serviceName=demo&protectThreshold=0.3&metadata=%7B%22owner%22%3A%22team%22%7D&selector=%7B%22type%22%3A%22label%22%2C%22expression%22%3A%22a%3Db%22%7D`, 200, "ok")
	expect("POST", svc, "serviceName=demo", 400, "specified service DEFAULT_GROUP@@demo already exists!")
	expect("PUT", svc, "serviceName=demo", 400, "Param 'protectThreshold' is required.")

	var d struct {
		NamespaceID      string            `json:"namespaceId"`
		GroupName        string            `json:"groupName"`
		Name             string            `json:"name"`
		ProtectThreshold float64           `json:"protectThreshold"`
		Metadata         map[string]string `json:"metadata"`
		Selector         model.Selector    `json:"selector"`
		Clusters         []struct {
			Name string `json:"name"`
		} `json:"clusters"`
	}
	decodeJSON(t, h.mustDo(t, "GET", svc+"?serviceName=DEFAULT_GROUP@@demo", ""), &d)
	if d.NamespaceID != "public" || d.GroupName != "DEFAULT_GROUP" || d.Name != "demo" || d.ProtectThreshold != 0.3 ||
		d.Metadata["owner"] != "team" || d.Selector.Type != "label" || d.Selector.Expression != "a=b" || len(d.Clusters) != 0 {
		t.Fatalf("detail %+v", d)
	}
	expect("PUT", svc, "serviceName=demo&protectThreshold=0.8", 200, "ok")
	h.register(t, "demo", "10.0.0.1", 80, "clusterName=c1")
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/service?serviceName=demo", ""), &d)
	if d.ProtectThreshold != 0.8 || len(d.Clusters) != 1 || d.Clusters[0].Name != "c1" || d.Selector.Type != "none" || d.Metadata == nil {
		t.Fatalf("detail after update %+v", d)
	}
	expect("DELETE", svc+"?serviceName=demo", "", 400, "is not empty")
	h.mustDo(t, "DELETE", "/nacos/v1/ns/instance?serviceName=demo&ip=10.0.0.1&port=80&clusterName=c1", "")
	expect("DELETE", svc+"?serviceName=demo", "", 200, "ok")
	expect("GET", svc+"?serviceName=demo", "", 400, "is not found")
}

func TestServiceList(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"e", "a", "c", "b", "d"} {
		h.register(t, n, "10.0.0.1", 80, "")
	}
	h.register(t, "G%40%40x", "10.0.0.1", 80, "")
	h.register(t, "y", "10.0.0.1", 80, "namespaceId=dev")
	type resp struct {
		Count int      `json:"count"`
		Doms  []string `json:"doms"`
	}
	for _, tt := range []struct {
		query string
		count int
		doms  string
	}{
		{"pageNo=1&pageSize=2", 5, "a,b"},
		{"pageNo=2&pageSize=2", 5, "c,d"},
		{"pageNo=3&pageSize=2", 5, "e"},
		{"pageNo=4&pageSize=2", 5, ""},
		{"pageNo=0&pageSize=10", 5, "a,b,c,d,e"},
		{"pageNo=1&pageSize=0", 5, ""},
		{"pageNo=1&pageSize=10&groupName=G", 1, "x"},
		{"pageNo=1&pageSize=10&namespaceId=dev", 1, "y"},
		{"pageNo=1&pageSize=10&groupName=none", 0, ""},
		{"pageNo=9223372036854775807&pageSize=2", 5, ""},
		{"pageNo=4611686018427387905&pageSize=4", 5, ""},
	} {
		var r resp
		decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/service/list?"+tt.query, ""), &r)
		if r.Count != tt.count || strings.Join(r.Doms, ",") != tt.doms || r.Doms == nil {
			t.Errorf("%s: %+v, want count %d doms %q", tt.query, r, tt.count, tt.doms)
		}
	}
	for _, q := range []string{"pageSize=10", "pageNo=1", "pageNo=x&pageSize=1", "pageNo=-1&pageSize=1", "pageNo=1&pageSize=10&namespaceId=a/b"} {
		if w := h.do(t, "GET", "/nacos/v1/ns/service/list?"+q, ""); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, w.Code, w.Body.String())
		}
	}
}

func TestCatalog(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alpha", "10.0.0.1", 80, "clusterName=c1")
	h.register(t, "alpha", "10.0.0.2", 80, "clusterName=c2&healthy=false")
	h.register(t, "G%40%40beta", "10.0.0.3", 80, "")
	var cs struct {
		Count       int `json:"count"`
		ServiceList []struct {
			Name                 string `json:"name"`
			GroupName            string `json:"groupName"`
			ClusterCount         int    `json:"clusterCount"`
			IPCount              int    `json:"ipCount"`
			HealthyInstanceCount int    `json:"healthyInstanceCount"`
		} `json:"serviceList"`
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/services?pageNo=1&pageSize=10", ""), &cs)
	if cs.Count != 2 || len(cs.ServiceList) != 2 {
		t.Fatalf("catalog services %+v", cs)
	}
	a := cs.ServiceList[0]
	if a.Name != "alpha" || a.GroupName != "DEFAULT_GROUP" || a.ClusterCount != 2 || a.IPCount != 2 || a.HealthyInstanceCount != 1 {
		t.Fatalf("alpha %+v (beta sorts first by group G < DEFAULT_GROUP? got %+v)", a, cs.ServiceList)
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/services?serviceNameParam=bet&groupNameParam=G", ""), &cs)
	if cs.Count != 1 || cs.ServiceList[0].Name != "beta" {
		t.Fatalf("filtered %+v", cs)
	}
	var wi []struct {
		ServiceName string `json:"serviceName"`
		GroupName   string `json:"groupName"`
		ClusterMap  map[string]struct {
			Hosts []struct {
				IP string `json:"ip"`
			} `json:"hosts"`
		} `json:"clusterMap"`
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/services?withInstances=true&serviceNameParam=alpha", ""), &wi)
	if len(wi) != 1 || len(wi[0].ClusterMap) != 2 || wi[0].ClusterMap["c2"].Hosts[0].IP != "10.0.0.2" {
		t.Fatalf("withInstances %+v", wi)
	}
	var ci struct {
		Count int `json:"count"`
		List  []struct {
			IP          string `json:"ip"`
			ClusterName string `json:"clusterName"`
		} `json:"list"`
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/instances?serviceName=alpha&pageNo=1&pageSize=10", ""), &ci)
	if ci.Count != 2 || len(ci.List) != 2 {
		t.Fatalf("catalog instances %+v", ci)
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/instances?serviceName=alpha&clusterName=c1", ""), &ci)
	if ci.Count != 1 || ci.List[0].IP != "10.0.0.1" {
		t.Fatalf("catalog instances c1 %+v", ci)
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/instances?serviceName=alpha&pageNo=2&pageSize=1", ""), &ci)
	if ci.Count != 2 || len(ci.List) != 1 || ci.List[0].IP != "10.0.0.2" {
		t.Fatalf("catalog instances page 2 %+v", ci)
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/catalog/instances?serviceName=none", ""), &ci)
	if ci.Count != 0 || ci.List == nil {
		t.Fatalf("catalog instances of an unknown service %+v", ci)
	}
}

func TestMetricsSwitchesLogin(t *testing.T) {
	h := newHarness(t)
	h.register(t, "demo", "10.0.0.1", 80, "")
	h.register(t, "demo", "10.0.0.2", 80, "")
	for _, p := range []string{"operator", "ops"} {
		w := h.mustDo(t, "GET", "/nacos/v1/ns/"+p+"/metrics", "")
		if w.Body.String() != `{"status":"UP"}` {
			t.Fatalf("%s metrics %s", p, w.Body.String())
		}
		var m map[string]any
		decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/"+p+"/metrics?onlyStatus=false", ""), &m)
		if m["status"] != "UP" || m["serviceCount"] != 1.0 || m["instanceCount"] != 2.0 || m["subscribeCount"] != 0.0 {
			t.Fatalf("%s metrics %v", p, m)
		}
		var sw map[string]any
		decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/"+p+"/switches", ""), &sw)
		if sw["clientBeatInterval"] != 5000.0 || sw["defaultPushCacheMillis"] != 10000.0 || sw["defaultCacheMillis"] != 3000.0 ||
			sw["lightBeatEnabled"] != true || sw["pushEnabled"] != true || sw["defaultInstanceEphemeral"] != true ||
			sw["pushGoVersion"] != "0.1.0" || sw["pushJavaVersion"] != "0.1.0" {
			t.Fatalf("%s switches %v", p, sw)
		}
		if w := h.do(t, "PUT", "/nacos/v1/ns/"+p+"/switches", "entry=pushEnabled&value=false"); w.Code != 400 || !strings.Contains(w.Body.String(), "pushEnabled") {
			t.Fatalf("PUT switches %d %s", w.Code, w.Body.String())
		}
	}
	h.api.cfg.Extra = func() map[string]any { return map[string]any{"ready": true} }
	var m map[string]any
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/operator/metrics?onlyStatus=false", ""), &m)
	if m["ready"] != true {
		t.Fatalf("Extra not merged: %v", m)
	}
	for _, p := range []string{"/nacos/v1/auth/users/login", "/nacos/v1/auth/login"} {
		var lg map[string]any
		decodeJSON(t, h.mustDo(t, "POST", p, "username=nacos&password=nacos"), &lg)
		if _, ok := lg["tokenTtl"].(float64); !ok || lg["username"] != "nacos" {
			t.Fatalf("login %v", lg)
		}
	}
}

func TestNoPushConfigured(t *testing.T) {
	h := newHarness(t)
	h.api = New(Config{Store: h.st, Writer: h.local, Limits: model.DefaultLimits()})
	h.h = h.api.Handler()
	h.mustDo(t, "GET", "/nacos/v1/ns/instance/list?serviceName=demo&udpPort=5000&clientIP=1.2.3.4", "")
	var sw map[string]any
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/operator/switches", ""), &sw)
	if sw["pushEnabled"] != false {
		t.Fatalf("pushEnabled %v without push", sw["pushEnabled"])
	}
}

func TestExpiryVisibleInList(t *testing.T) {
	h := newHarness(t)
	h.register(t, "demo", "10.0.0.1", 80, "")
	step := func(n int) {
		for range n {
			h.clk.Advance(registry.ScanInterval)
			h.local.ScanOnce()
		}
	}
	step(60) // 15 s
	if lr := h.list(t, "serviceName=demo"); len(lr.Hosts) != 1 || lr.Hosts[0].Healthy {
		t.Fatalf("at 15 s %+v", lr.Hosts)
	}
	step(60) // 30 s
	if lr := h.list(t, "serviceName=demo"); len(lr.Hosts) != 0 {
		t.Fatalf("at 30 s %+v", lr.Hosts)
	}
}

// A node that has not loaded its data answers naming reads with 503 (so
// clients fail over) but accepts writes.
func TestReadsWaitForReadiness(t *testing.T) {
	h := newHarness(t)
	ready := false
	h.api = New(Config{Store: h.st, Writer: h.local, Limits: model.DefaultLimits(),
		Ready: func() (bool, string) { return ready, "loading snapshot" }})
	h.h = h.api.Handler()
	for _, target := range []string{
		"/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@r",
		"/nacos/v1/ns/service/list?pageNo=1&pageSize=10",
		"/nacos/v1/ns/catalog/services",
		"/nacos/v1/ns/instance?serviceName=r&ip=10.0.0.1&port=80",
	} {
		if w := h.do(t, "GET", target, ""); w.Code != 503 || !strings.Contains(w.Body.String(), "loading snapshot") {
			t.Errorf("GET %s while loading: %d %s", target, w.Code, w.Body.String())
		}
	}
	if w := h.do(t, "POST", "/nacos/v1/ns/instance", "serviceName=r&ip=10.0.0.1&port=80"); w.Code != 200 {
		t.Fatalf("write while loading: %d %s", w.Code, w.Body.String())
	}
	if w := h.do(t, "GET", "/nacos/v1/ns/operator/metrics", ""); w.Code != 200 {
		t.Fatalf("metrics while loading: %d", w.Code)
	}
	ready = true
	if w := h.do(t, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@r", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "10.0.0.1") {
		t.Fatalf("list when ready: %d %s", w.Code, w.Body.String())
	}
}

// TestFront: the front handler serves the API's routes as the mux would,
// and leaves to the mux a path the mux gives to another handler.
func TestFront(t *testing.T) {
	h := newHarness(t)
	mux := http.NewServeMux()
	mux.Handle("/nacos/", h.api)
	mux.HandleFunc("GET /nacos/v1/ns/service/list", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mux")) })
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("other")) })
	f := h.api.Front(mux)
	for _, c := range []struct{ method, target, want string }{
		{"GET", "/nacos/v1/ns/service/list?pageNo=1&pageSize=10", "mux"},
		{"GET", "/other", "other"},
		{"PUT", "/nacos/v1/ns/instance/beat?serviceName=x&ip=10.0.0.1&port=1", `"code":20404`},
		{"HEAD", "/nacos/v1/ns/operator/metrics", ""},
	} {
		w := httptest.NewRecorder()
		f.ServeHTTP(w, httptest.NewRequest(c.method, c.target, nil))
		if !strings.Contains(w.Body.String(), c.want) || w.Code != http.StatusOK {
			t.Errorf("%s %s: %d %q, want %q", c.method, c.target, w.Code, w.Body.String(), c.want)
		}
	}
}
