package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeRegistry is the shared state of a fake cluster: several fakeServers
// over one store, so that any server can answer for any write.
type fakeRegistry struct {
	mu       sync.Mutex
	services map[string][]fakeInstance // grouped name -> instances
	nodes    string                    // JSON answer of cluster/nodes
	lastNS   string                    // namespaceId of the last naming call
}

type fakeInstance struct {
	IP        string            `json:"ip"`
	Port      int               `json:"port"`
	Weight    float64           `json:"weight"`
	Healthy   bool              `json:"healthy"`
	Enabled   bool              `json:"enabled"`
	Ephemeral bool              `json:"ephemeral"`
	Cluster   string            `json:"clusterName"`
	Metadata  map[string]string `json:"metadata"`
}

func newRegistry() *fakeRegistry {
	return &fakeRegistry{services: map[string][]fakeInstance{}}
}

// fakeServer is one HTTP server of the fake cluster.
type fakeServer struct {
	*httptest.Server
	reg  *fakeRegistry
	hits atomic.Int64
	// answer, when non-zero, is the status every request gets (e.g. 503).
	answer   atomic.Int32
	notReady atomic.Bool
	// metrics overrides the operator/metrics answer when non-empty.
	metrics string
	ua      atomic.Value // last User-Agent
}

func (r *fakeRegistry) start(t *testing.T) *fakeServer {
	t.Helper()
	s := &fakeServer{reg: r}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// deadAddr returns a loopback address with nothing listening.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.ua.Store(r.UserAgent())
	if code := s.answer.Load(); code != 0 {
		http.Error(w, "fake failure", int(code))
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reg := s.reg
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/nacos/v1/ns/instance") || r.URL.Path == "/nacos/v1/ns/service/list" {
		reg.lastNS = r.Form.Get("namespaceId")
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /nacos/v1/ns/instance":
		port, _ := strconv.Atoi(r.Form.Get("port"))
		weight, _ := strconv.ParseFloat(r.Form.Get("weight"), 64)
		if weight < 0 || weight > 10000 {
			http.Error(w, fmt.Sprintf("weight %s is out of range 0-10000", r.Form.Get("weight")), http.StatusBadRequest)
			return
		}
		inst := fakeInstance{
			IP: r.Form.Get("ip"), Port: port, Weight: weight,
			Healthy: r.Form.Get("healthy") == "true", Enabled: r.Form.Get("enabled") == "true",
			Ephemeral: r.Form.Get("ephemeral") == "true", Cluster: r.Form.Get("clusterName"),
			Metadata: map[string]string{},
		}
		if md := r.Form.Get("metadata"); md != "" {
			if err := json.Unmarshal([]byte(md), &inst.Metadata); err != nil {
				http.Error(w, "bad metadata", http.StatusBadRequest)
				return
			}
		}
		name := r.Form.Get("serviceName")
		list := slices.DeleteFunc(reg.services[name], func(i fakeInstance) bool {
			return i.IP == inst.IP && i.Port == inst.Port && i.Cluster == inst.Cluster
		})
		reg.services[name] = append(list, inst)
		io.WriteString(w, "ok")
	case "DELETE /nacos/v1/ns/instance":
		port, _ := strconv.Atoi(r.Form.Get("port"))
		name := r.Form.Get("serviceName")
		reg.services[name] = slices.DeleteFunc(reg.services[name], func(i fakeInstance) bool {
			return i.IP == r.Form.Get("ip") && i.Port == port && i.Cluster == r.Form.Get("clusterName")
		})
		io.WriteString(w, "ok")
	case "GET /nacos/v1/ns/instance/list":
		name := r.Form.Get("serviceName")
		var clusters []string
		if c := r.Form.Get("clusters"); c != "" {
			clusters = strings.Split(c, ",")
		}
		hosts := []map[string]any{}
		for _, i := range reg.services[name] {
			if len(clusters) > 0 && !slices.Contains(clusters, i.Cluster) {
				continue
			}
			if r.Form.Get("healthyOnly") == "true" && !i.Healthy {
				continue
			}
			hosts = append(hosts, map[string]any{
				"instanceId": fmt.Sprintf("%s#%d#%s#%s", i.IP, i.Port, i.Cluster, name),
				"ip":         i.IP, "port": i.Port, "weight": i.Weight, "healthy": i.Healthy, "enabled": i.Enabled,
				"ephemeral": i.Ephemeral, "clusterName": i.Cluster, "serviceName": name, "metadata": i.Metadata,
			})
		}
		group, _, _ := strings.Cut(name, "@@")
		json.NewEncoder(w).Encode(map[string]any{
			"name": name, "groupName": group, "clusters": r.Form.Get("clusters"), "cacheMillis": 10000,
			"lastRefTime": 1700000000000, "valid": true, "hosts": hosts,
		})
	case "GET /nacos/v1/ns/service/list":
		prefix := r.Form.Get("groupName") + "@@"
		var names []string
		for name, list := range reg.services {
			if bare, ok := strings.CutPrefix(name, prefix); ok && len(list) > 0 {
				names = append(names, bare)
			}
		}
		slices.Sort(names)
		pageNo, _ := strconv.Atoi(r.Form.Get("pageNo"))
		pageSize, _ := strconv.Atoi(r.Form.Get("pageSize"))
		from, to := min((pageNo-1)*pageSize, len(names)), min(pageNo*pageSize, len(names))
		json.NewEncoder(w).Encode(map[string]any{"count": len(names), "doms": append([]string{}, names[from:to]...)})
	case "GET /nacos/v1/ns/operator/metrics":
		if s.metrics != "" {
			io.WriteString(w, s.metrics)
			return
		}
		instances := 0
		services := 0
		for _, l := range reg.services {
			if len(l) > 0 {
				services++
			}
			instances += len(l)
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "UP", "serviceCount": services, "instanceCount": instances, "subscribeCount": 0})
	case "GET /readyz":
		if s.notReady.Load() {
			http.Error(w, "loading snapshot from peers", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	case "GET /nacos/v1/core/cluster/nodes":
		io.WriteString(w, reg.nodes)
	default:
		http.Error(w, "no route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}
