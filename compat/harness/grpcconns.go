package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// GRPCConn is one Nacos 2 client connection as distrod's operator endpoint
// GET /distro/admin/connections describes it.
type GRPCConn struct {
	ID            string            `json:"connectionId"`
	RemoteAddr    string            `json:"remoteAddr"`
	ClientIP      string            `json:"clientIp"`
	ClientVersion string            `json:"clientVersion"`
	Labels        map[string]string `json:"labels"`
	Registered    bool              `json:"registered"`
	Subscriptions int               `json:"subscriptions"`
	Services      int               `json:"services"`
}

// GRPCConns lists the node's Nacos 2 client connections. A client can be
// recognised by its labels: nacos-sdk-go v2 sends ClientConfig.AppConnLabels
// with an "app_" prefix (AppConnLabels{"compat": "x"} → labels["app_compat"]).
// With auth on, pass an admin token.
func (n *Node) GRPCConns(token ...string) ([]GRPCConn, error) {
	h := &NacosHTTP{Base: n.BaseURL(), Client: &http.Client{Timeout: 5 * time.Second}}
	if len(token) > 0 {
		h.Token = token[0]
	}
	body, err := h.Do(http.MethodGet, "/distro/admin/connections", nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Connections []GRPCConn `json:"connections"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("/distro/admin/connections body %q: %w", body, err)
	}
	return r.Connections, nil
}
