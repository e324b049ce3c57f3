package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NacosHTTP is a raw Nacos v1 HTTP client for tests: it sets up state the
// SDKs cannot (instances without heartbeats, custom timeouts) and reads the
// server's view without any client cache in between.
type NacosHTTP struct {
	// Base is the API root, e.g. http://127.0.0.1:8848/nacos.
	Base   string
	Client *http.Client
	// Token, if set, is sent as "Authorization: Bearer" (auth on).
	Token string
}

// HTTP returns a raw v1 client for the node.
func (n *Node) HTTP() *NacosHTTP {
	return &NacosHTTP{Base: n.NacosURL(), Client: &http.Client{Timeout: 5 * time.Second}}
}

// HTTPError is a non-200 answer.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, strings.TrimSpace(e.Body))
}

// Do sends params as a form body (POST, PUT, PATCH) or in the query string
// (GET, DELETE) to Base+path and returns the body of a 200 answer, or an
// *HTTPError.
func (h *NacosHTTP) Do(method, path string, params url.Values) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := h.Base + path
	var body io.Reader
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		body = strings.NewReader(params.Encode())
	default:
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), &HTTPError{Method: method, URL: u, Status: resp.StatusCode, Body: string(b)}
	}
	return string(b), nil
}

// Login logs in with POST /v1/auth/login and returns the access token.
func (h *NacosHTTP) Login(username, password string) (string, error) {
	body, err := h.Do(http.MethodPost, "/v1/auth/login", url.Values{"username": {username}, "password": {password}})
	if err != nil {
		return "", err
	}
	var r struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.AccessToken == "" {
		return "", fmt.Errorf("login answer %q: %v", body, err)
	}
	return r.AccessToken, nil
}

// AsUser returns a copy of h that sends the token of username (it logs in).
func (h *NacosHTTP) AsUser(username, password string) (*NacosHTTP, error) {
	tok, err := h.Login(username, password)
	if err != nil {
		return nil, err
	}
	c := *h
	c.Token = tok
	return &c, nil
}

// RegisterInstance POSTs /v1/ns/instance (no heartbeats follow).
func (h *NacosHTTP) RegisterInstance(params url.Values) error {
	_, err := h.Do(http.MethodPost, "/v1/ns/instance", params)
	return err
}

// DeregisterInstance DELETEs /v1/ns/instance.
func (h *NacosHTTP) DeregisterInstance(params url.Values) error {
	_, err := h.Do(http.MethodDelete, "/v1/ns/instance", params)
	return err
}

// V1Service is the body of GET /v1/ns/instance/list.
type V1Service struct {
	Name                     string       `json:"name"`
	GroupName                string       `json:"groupName"`
	Clusters                 string       `json:"clusters"`
	CacheMillis              int64        `json:"cacheMillis"`
	LastRefTime              int64        `json:"lastRefTime"`
	Checksum                 string       `json:"checksum"`
	AllIPs                   bool         `json:"allIPs"`
	ReachProtectionThreshold bool         `json:"reachProtectionThreshold"`
	Valid                    bool         `json:"valid"`
	Hosts                    []V1Instance `json:"hosts"`
}

// V1Instance is one host of V1Service.
type V1Instance struct {
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
}

// Find returns the host with ip:port, or nil.
func (s *V1Service) Find(ip string, port int) *V1Instance {
	for i := range s.Hosts {
		if s.Hosts[i].IP == ip && s.Hosts[i].Port == port {
			return &s.Hosts[i]
		}
	}
	return nil
}

// ListInstances GETs /v1/ns/instance/list for a grouped service name
// ("GROUP@@svc"), without udpPort (no push subscription).
func (h *NacosHTTP) ListInstances(groupedName, clusters string, healthyOnly bool) (*V1Service, error) {
	body, err := h.Do(http.MethodGet, "/v1/ns/instance/list", url.Values{
		"serviceName": {groupedName}, "clusters": {clusters}, "healthyOnly": {fmt.Sprint(healthyOnly)},
	})
	if err != nil {
		return nil, err
	}
	var s V1Service
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nil, fmt.Errorf("instance/list body %q: %w", body, err)
	}
	return &s, nil
}

// Metric sums every series of the Prometheus metric name in GET /metrics
// (e.g. "distro_distro_owned_keys"); found is false if no series exists.
func (n *Node) Metric(name string) (sum float64, found bool, err error) {
	h := &NacosHTTP{Base: n.BaseURL(), Client: &http.Client{Timeout: 5 * time.Second}}
	body, err := h.Do(http.MethodGet, "/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(fields[0], "%g", &v); err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, nil
}
