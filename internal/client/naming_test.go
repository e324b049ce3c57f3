package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestGroupedName(t *testing.T) {
	for _, tc := range []struct{ group, service, want string }{
		{"", "demo", "DEFAULT_GROUP@@demo"},
		{"G", "demo", "G@@demo"},
		{"G", "H@@demo", "H@@demo"},
	} {
		if got := GroupedName(tc.group, tc.service); got != tc.want {
			t.Errorf("GroupedName(%q, %q) = %q, want %q", tc.group, tc.service, got, tc.want)
		}
	}
}

func TestRegisterInstanceParams(t *testing.T) {
	f := newFake(t, ok)
	c := newClient(t, []string{f.addr()}, 1, WithNamespace("ns-1"))
	md := map[string]string{"version": "1+2 &x=y", "zone": "a,b"}
	err := c.RegisterInstance(context.Background(), Instance{
		InstanceID: "ignored", ServiceName: "demo svc", IP: "10.0.0.1", Port: 8080,
		Weight: 2.5, Healthy: true, Enabled: false, Ephemeral: true, ClusterName: "c1", Metadata: md,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.Method != http.MethodPost || r.Path != "/nacos/v1/ns/instance" {
		t.Fatalf("%s %s", r.Method, r.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded;charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if len(r.Query) != 0 {
		t.Errorf("POST put params in the query: %v", r.Query)
	}
	want := map[string]string{
		"serviceName": "DEFAULT_GROUP@@demo svc", "groupName": "DEFAULT_GROUP", "ip": "10.0.0.1", "port": "8080",
		"weight": "2.5", "healthy": "true", "enabled": "false", "ephemeral": "true", "clusterName": "c1", "namespaceId": "ns-1",
	}
	for k, v := range want {
		if got := r.Form.Get(k); got != v {
			t.Errorf("param %s = %q, want %q", k, got, v)
		}
	}
	if r.Form.Has("instanceId") {
		t.Error("instanceId must not be sent")
	}
	var gotMD map[string]string
	if err := json.Unmarshal([]byte(r.Form.Get("metadata")), &gotMD); err != nil || !reflect.DeepEqual(gotMD, md) {
		t.Errorf("metadata = %q (%v)", r.Form.Get("metadata"), err)
	}
}

func TestRegisterOmitsEmptyOptionalParams(t *testing.T) {
	f := newFake(t, ok)
	c := newClient(t, []string{f.addr()}, 1)
	if err := c.RegisterInstance(context.Background(), Instance{ServiceName: "G@@demo", IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	for _, k := range []string{"clusterName", "metadata", "namespaceId"} {
		if r.Form.Has(k) {
			t.Errorf("%s sent: %q", k, r.Form.Get(k))
		}
	}
	if r.Form.Get("serviceName") != "G@@demo" || r.Form.Get("groupName") != "G" {
		t.Errorf("serviceName=%q groupName=%q", r.Form.Get("serviceName"), r.Form.Get("groupName"))
	}
}

func TestDeregisterInstanceParams(t *testing.T) {
	f := newFake(t, ok)
	c := newClient(t, []string{f.addr()}, 1)
	if err := c.DeregisterInstance(context.Background(), "demo", "G", "10.0.0.1", 8080, "c1", false); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.Method != http.MethodDelete || r.Path != "/nacos/v1/ns/instance" {
		t.Fatalf("%s %s", r.Method, r.Path)
	}
	want := map[string]string{"serviceName": "G@@demo", "ip": "10.0.0.1", "port": "8080", "clusterName": "c1", "ephemeral": "false"}
	for k, v := range want {
		if got := r.Query.Get(k); got != v {
			t.Errorf("param %s = %q, want %q", k, got, v)
		}
	}
}

const listAnswer = `{"name":"DEFAULT_GROUP@@demo","groupName":"DEFAULT_GROUP","clusters":"a,b","cacheMillis":10000,
 "lastRefTime":1732550000000,"checksum":"","allIPs":false,"reachProtectionThreshold":false,"valid":true,
 "hosts":[{"instanceId":"10.0.0.1#8080#a#DEFAULT_GROUP@@demo","ip":"10.0.0.1","port":8080,"weight":1.0,
  "healthy":true,"enabled":true,"ephemeral":true,"clusterName":"a","serviceName":"DEFAULT_GROUP@@demo",
  "metadata":{"k":"v"},"instanceHeartBeatInterval":5000}]}`

func TestListInstances(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, listAnswer) })
	c := newClient(t, []string{f.addr()}, 1)
	info, err := c.ListInstances(context.Background(), "demo", "", []string{"a", "b"}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.Method != http.MethodGet || r.Path != "/nacos/v1/ns/instance/list" {
		t.Fatalf("%s %s", r.Method, r.Path)
	}
	if r.Query.Get("serviceName") != "DEFAULT_GROUP@@demo" || r.Query.Get("clusters") != "a,b" || r.Query.Get("healthyOnly") != "true" {
		t.Errorf("query = %v", r.Query)
	}
	want := &ServiceInfo{
		Name: "DEFAULT_GROUP@@demo", GroupName: "DEFAULT_GROUP", Clusters: "a,b", CacheMillis: 10000,
		LastRefTime: 1732550000000, Valid: true,
		Hosts: []Instance{{InstanceID: "10.0.0.1#8080#a#DEFAULT_GROUP@@demo", IP: "10.0.0.1", Port: 8080, Weight: 1,
			Healthy: true, Enabled: true, Ephemeral: true, ClusterName: "a", ServiceName: "DEFAULT_GROUP@@demo",
			Metadata: map[string]string{"k": "v"}}},
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("got  %+v\nwant %+v", info, want)
	}
}

func TestListInstancesBadJSONNotRetried(t *testing.T) {
	a := newFake(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>") })
	b := newFake(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>") })
	c := newClient(t, []string{a.addr(), b.addr()}, 1)
	if _, err := c.ListInstances(context.Background(), "demo", "", nil, false); err == nil {
		t.Fatal("want decode error")
	}
	if a.hits.Load()+b.hits.Load() != 1 {
		t.Errorf("hits = %d+%d, want 1", a.hits.Load(), b.hits.Load())
	}
}

func TestListServices(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"count":3,"doms":["a","b"]}`) })
	c := newClient(t, []string{f.addr()}, 1)
	list, err := c.ListServices(context.Background(), "G", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if list.Count != 3 || !reflect.DeepEqual(list.Doms, []string{"a", "b"}) {
		t.Errorf("list = %+v", list)
	}
	r := f.last(t)
	if r.Path != "/nacos/v1/ns/service/list" || r.Query.Get("groupName") != "G" || r.Query.Get("pageNo") != "2" || r.Query.Get("pageSize") != "2" {
		t.Errorf("%s %v", r.Path, r.Query)
	}
	if _, err := c.ListServices(context.Background(), "", 0, 0); err != nil {
		t.Fatal(err)
	}
	if q := f.last(t).Query; q.Get("groupName") != DefaultGroup || q.Get("pageNo") != "1" || q.Get("pageSize") != "100" {
		t.Errorf("defaults: %v", q)
	}
}

func TestBeat(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}`)
	})
	c := newClient(t, []string{f.addr()}, 1)
	res, err := c.Beat(context.Background(), BeatInfo{ServiceName: "demo", IP: "10.0.0.1", Port: 80, Weight: 1, Cluster: "DEFAULT", Scheduled: true})
	if err != nil {
		t.Fatal(err)
	}
	if *res != (BeatResult{ClientBeatInterval: 5000, Code: BeatOK, LightBeatEnabled: true}) {
		t.Errorf("res = %+v", res)
	}
	r := f.last(t)
	if r.Method != http.MethodPut || r.Path != "/nacos/v1/ns/instance/beat" || r.Form.Get("serviceName") != "DEFAULT_GROUP@@demo" {
		t.Fatalf("%s %s %v", r.Method, r.Path, r.Form)
	}
	var beat map[string]any
	if err := json.Unmarshal([]byte(r.Form.Get("beat")), &beat); err != nil {
		t.Fatalf("beat %q: %v", r.Form.Get("beat"), err)
	}
	want := map[string]any{"ip": "10.0.0.1", "port": 80.0, "serviceName": "DEFAULT_GROUP@@demo", "cluster": "DEFAULT",
		"weight": 1.0, "metadata": map[string]any{}, "scheduled": true}
	if !reflect.DeepEqual(beat, want) {
		t.Errorf("beat = %v\nwant   %v", beat, want)
	}
}

func TestServerStatusOneServerOnly(t *testing.T) {
	up := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"status":"UP","serviceCount":3,"instanceCount":12,"subscribeCount":1}`)
	})
	other := newFake(t, ok)
	c := newClient(t, []string{other.addr(), up.addr()}, 1)
	m, err := c.ServerStatus(context.Background(), up.addr())
	if err != nil {
		t.Fatal(err)
	}
	if m["status"] != "UP" || m["instanceCount"] != json.Number("12") {
		t.Errorf("m = %v", m)
	}
	if r := up.last(t); r.Path != "/nacos/v1/ns/operator/metrics" || r.Query.Get("onlyStatus") != "false" {
		t.Errorf("%s %v", r.Path, r.Query)
	}
	if other.hits.Load() != 0 {
		t.Error("ServerStatus asked another server")
	}
	// A dead server is reported, not failed over.
	dead := deadAddr(t)
	if _, err := c.ServerStatus(context.Background(), dead); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want a plain transport error", err)
	}
	if other.hits.Load() != 0 {
		t.Error("ServerStatus failed over")
	}
}

func TestClusterNodes(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"code":200,"message":null,"data":[{"ip":"10.0.0.1","port":8848,"state":"UP","address":"10.0.0.1:8848",
			"extendInfo":{"lastRefreshTime":1732550000123,"version":"0.1"},"failAccessCnt":0},
			{"ip":"10.0.0.2","port":8848,"state":"DOWN","address":"10.0.0.2:8848","extendInfo":{},"failAccessCnt":4}]}`)
	})
	c := newClient(t, []string{deadAddr(t), f.addr()}, 1)
	nodes, err := c.ClusterNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Address != "10.0.0.1:8848" || nodes[1].State != "DOWN" || nodes[1].FailAccessCnt != 4 {
		t.Fatalf("nodes = %+v", nodes)
	}
	if got, want := nodes[0].LastRefreshTime(), time.UnixMilli(1732550000123); !got.Equal(want) {
		t.Errorf("LastRefreshTime = %v, want %v", got, want)
	}
	if !nodes[1].LastRefreshTime().IsZero() {
		t.Error("missing lastRefreshTime must give the zero time")
	}
	if r := f.last(t); r.Path != "/nacos/v1/core/cluster/nodes" {
		t.Errorf("path %s", r.Path)
	}
}

func TestClusterNodesErrorCode(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"code":403,"message":"no right","data":null}`)
	})
	c := newClient(t, []string{f.addr()}, 1)
	_, err := c.ClusterNodes(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Message != "no right" {
		t.Errorf("err = %v", err)
	}
}

func TestNodeLastRefreshTimeForms(t *testing.T) {
	for _, v := range []any{json.Number("1000"), 1000.0, "1000", json.Number("1000.0")} {
		n := Node{ExtendInfo: map[string]any{"lastRefreshTime": v}}
		if got := n.LastRefreshTime(); !got.Equal(time.UnixMilli(1000)) {
			t.Errorf("%T %v: got %v", v, v, got)
		}
	}
	for _, v := range []any{nil, "x", json.Number("-1"), true} {
		n := Node{ExtendInfo: map[string]any{"lastRefreshTime": v}}
		if !n.LastRefreshTime().IsZero() {
			t.Errorf("%v: want zero", v)
		}
	}
}

func TestReadyz(t *testing.T) {
	ready := newFake(t, ok)
	notReady := newFake(t, status(http.StatusServiceUnavailable, "loading snapshot"))
	c := newClient(t, []string{ready.addr()}, 1)
	if err := c.Readyz(context.Background(), ready.addr()); err != nil {
		t.Errorf("ready: %v", err)
	}
	if r := ready.last(t); r.Path != "/readyz" {
		t.Errorf("path %s", r.Path)
	}
	err := c.Readyz(context.Background(), notReady.addr())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "loading snapshot" || ae.Server != notReady.addr() {
		t.Errorf("err = %v", err)
	}
	if err := c.Readyz(context.Background(), "nonsense"); err == nil {
		t.Error("want error for a bad address")
	}
}
