package httpapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

type detailCluster struct {
	Name             string            `json:"name"`
	HealthChecker    map[string]any    `json:"healthChecker"`
	Metadata         map[string]string `json:"metadata"`
	DefaultCheckPort int               `json:"defaultCheckPort"`
	UseIPPort4Check  bool              `json:"useIPPort4Check"`
}

func (h *harness) detailClusters(t *testing.T) []detailCluster {
	t.Helper()
	var d struct {
		Clusters []detailCluster `json:"clusters"`
	}
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/service?serviceName=demo", ""), &d)
	return d.Clusters
}

func clusterForm(kv ...string) string {
	v := url.Values{"serviceName": {"demo"}, "clusterName": {"DEFAULT"}, "checkPort": {"80"}, "useInstancePort4Check": {"true"},
		"healthChecker": {`{"type":"TCP"}`}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<absent>" {
			v.Del(kv[i])
			continue
		}
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestUpdateCluster(t *testing.T) {
	h := newHarness(t)
	if w := h.do(t, "PUT", "/nacos/v1/ns/cluster", clusterForm()); w.Code != 400 || !strings.Contains(w.Body.String(), "service not found") {
		t.Fatalf("cluster of a missing service: %d %s", w.Code, w.Body.String())
	}
	h.register(t, "demo", "127.0.0.1", 3306, "ephemeral=false")
	// Before any setting: the default checker (NONE unless configured).
	cs := h.detailClusters(t)
	if len(cs) != 1 || cs[0].Name != "DEFAULT" || cs[0].HealthChecker["type"] != "NONE" || cs[0].DefaultCheckPort != 80 || !cs[0].UseIPPort4Check {
		t.Fatalf("default cluster %+v", cs)
	}
	// The console's form: an HTTP checker on a fixed check port.
	hc := `{"type":"HTTP","path":"/health","headers":"X-A:1","expectedResponseCode":204}`
	h.mustDo(t, "PUT", "/nacos/v1/ns/cluster", clusterForm("healthChecker", hc, "checkPort", "9090", "useInstancePort4Check", "false",
		"metadata", `{"zone":"a"}`))
	// A second cluster without instances appears in the detail too.
	h.mustDo(t, "PUT", "/nacos/v1/ns/cluster", clusterForm("clusterName", "spare", "healthChecker", `{"type":"none"}`))
	cs = h.detailClusters(t)
	if len(cs) != 2 || cs[0].Name != "DEFAULT" || cs[1].Name != "spare" {
		t.Fatalf("clusters %+v", cs)
	}
	d := cs[0]
	if d.HealthChecker["type"] != "HTTP" || d.HealthChecker["path"] != "/health" || d.HealthChecker["headers"] != "X-A:1" ||
		d.HealthChecker["expectedResponseCode"] != float64(204) || d.DefaultCheckPort != 9090 || d.UseIPPort4Check || d.Metadata["zone"] != "a" {
		t.Fatalf("DEFAULT cluster %+v", d)
	}
	if cs[1].HealthChecker["type"] != "NONE" {
		t.Fatalf("spare cluster %+v", cs[1])
	}
	var stored model.ClusterMeta
	if v := h.st.View(demo); v == nil || v.Meta == nil {
		t.Fatal("no settings stored")
	} else {
		stored = v.Meta.Clusters["DEFAULT"]
	}
	if stored.HealthChecker.ExpectedCode != 204 || stored.CheckPort != 9090 {
		t.Fatalf("stored %+v", stored)
	}

	// Bad input: 400 with a reason, and the store is unchanged.
	before := h.state()
	for _, tt := range []struct {
		form, want string
	}{
		{clusterForm("clusterName", "<absent>"), "Param 'clusterName' is required."},
		{clusterForm("checkPort", "<absent>"), "Param 'checkPort' is required."},
		{clusterForm("useInstancePort4Check", "<absent>"), "Param 'useInstancePort4Check' is required."},
		{clusterForm("healthChecker", "<absent>"), "Param 'healthChecker' is required."},
		{clusterForm("clusterName", "a/b"), "clusterName"},
		{clusterForm("checkPort", "http"), "not an integer"},
		{clusterForm("checkPort", "70000"), "checkPort 70000"},
		{clusterForm("checkPort", "0", "useInstancePort4Check", "false"), "checkPort 0"},
		{clusterForm("useInstancePort4Check", "maybe"), "not true or false"},
		{clusterForm("healthChecker", "{"), "not a valid JSON object"},
		{clusterForm("healthChecker", `{"type":"MYSQL","user":"root"}`), "MYSQL is not supported"},
		{clusterForm("healthChecker", `{"type":"HTTP","path":"http://169.254.169.254/"}`), "absolute path"},
		{clusterForm("healthChecker", `{"type":"HTTP","path":"/","headers":"A:b\r\nC:d"}`), "control character"},
		{clusterForm("healthChecker", `{"type":"HTTP","expectedResponseCode":42}`), "100-599"},
		{clusterForm("healthChecker", `{"type":"TCP","intervalMillis":1}`), "intervalMillis"},
		{clusterForm("metadata", `{"a":{"b":1}}`), "metadata"},
		{clusterForm("serviceName", "bad@@name@@x"), "serviceName"},
	} {
		w := h.do(t, "PUT", "/nacos/v1/ns/cluster", tt.form)
		if w.Code != 400 || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("%s: %d %q, want 400 containing %q", tt.form, w.Code, w.Body.String(), tt.want)
		}
	}
	if after := h.state(); after != before {
		t.Fatalf("bad requests changed the store:\n%s\n%s", before, after)
	}
	// A service update keeps the settings.
	h.mustDo(t, "PUT", "/nacos/v1/ns/service", "serviceName=demo&protectThreshold=0.5")
	if cs := h.detailClusters(t); len(cs) != 2 || cs[0].HealthChecker["type"] != "HTTP" {
		t.Fatalf("after a service update %+v", cs)
	}
	// The switches report the health check settings.
	var sw map[string]any
	decodeJSON(t, h.mustDo(t, "GET", "/nacos/v1/ns/operator/switches", ""), &sw)
	if sw["healthCheckEnabled"] != true || sw["checkTimes"] != float64(3) {
		t.Fatalf("switches %v %v", sw["healthCheckEnabled"], sw["checkTimes"])
	}
}
