package grpcapi

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/httproute"
)

// ConnInfo describes one client connection (operator view).
type ConnInfo struct {
	ID            string            `json:"connectionId"`
	RemoteAddr    string            `json:"remoteAddr"`
	ClientIP      string            `json:"clientIp"`
	ClientVersion string            `json:"clientVersion"`
	Tenant        string            `json:"tenant"`
	Labels        map[string]string `json:"labels"`
	Registered    bool              `json:"registered"`
	CreatedMs     int64             `json:"createdTime"`
	IdleMs        int64             `json:"idleMillis"`
	Subscriptions int               `json:"subscriptions"`
	Services      int               `json:"services"`
}

// Connections lists the open client connections, sorted by id.
func (s *Server) Connections() []ConnInfo {
	s.connMu.RLock()
	list := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		list = append(list, c)
	}
	s.connMu.RUnlock()
	slices.SortFunc(list, func(a, b *conn) int { return strings.Compare(a.id, b.id) })
	now := s.since(s.clk.Now())
	out := make([]ConnInfo, 0, len(list))
	for _, c := range list {
		ci := ConnInfo{ID: c.id, RemoteAddr: c.remote, Registered: c.state.Load() == stateRegistered,
			CreatedMs: c.created.UnixMilli(), IdleMs: time.Duration(now - c.active.Load()).Milliseconds()}
		c.opMu.Lock()
		ci.Services = c.services.len()
		c.opMu.Unlock()
		s.mu.Lock()
		ci.ClientIP, ci.ClientVersion, ci.Tenant = c.info.clientIP, c.info.clientVersion, c.info.tenant
		ci.Labels = maps.Clone(c.info.labels)
		ci.Subscriptions = c.subs.len()
		s.mu.Unlock()
		out = append(out, ci)
	}
	return out
}

// Reset sends ConnectResetRequest to up to count set-up connections (all
// when count <= 0; only connection id when id is not empty), asking each
// client to reconnect: to serverIP:serverPort when given and in the
// client's server list, else to its next server. Java clients, and Go
// clients given a redirect, connect elsewhere and then close this
// connection themselves; a connection still open ResetTimeout later (the Go
// SDK without a redirect only health-checks its current server) is closed,
// and the client, seeing its stream break, moves to its next server. Either
// way the connection's instances are removed when it closes, as on any
// disconnect, and the client registers them again where it reconnects. It
// returns how many connections were asked.
func (s *Server) Reset(count int, id, serverIP, serverPort string) int {
	s.connMu.RLock()
	var list []*conn
	for _, c := range s.conns {
		if c.state.Load() == stateRegistered && (id == "" || c.id == id) {
			list = append(list, c)
		}
	}
	s.connMu.RUnlock()
	slices.SortFunc(list, func(a, b *conn) int { return strings.Compare(a.id, b.id) })
	now := s.clk.Now()
	n := 0
	var stuck []*conn
	s.mu.Lock()
	for _, c := range list {
		if count > 0 && n >= count {
			break
		}
		if c.resetID != "" || c.state.Load() != stateRegistered {
			continue
		}
		c.resetID, c.resetDue = s.nextRequestID(), now.Add(s.cfg.ResetTimeout)
		if !c.send(EncodePayload(TypeConnectResetRequest, connectResetBody(c.resetID, serverIP, serverPort))) {
			stuck = append(stuck, c)
		}
		n++
	}
	s.mu.Unlock()
	s.m.resets.Add(float64(n))
	for _, c := range stuck {
		s.drop(c, "connect reset")
	}
	if n > 0 {
		s.log.Info("asked clients to reconnect elsewhere", "connections", n, "redirect", serverIP+":"+serverPort)
	}
	return n
}

// Mount adds the operator endpoints to mux:
//
//	GET  /distro/admin/connections        list client connections (JSON)
//	POST /distro/admin/connections/reset  move clients off this node;
//	     form or query parameters: count (default all), connectionId,
//	     redirect=ip:port (optional target node)
func (s *Server) Mount(mux httproute.Registrar) {
	mux.HandleFunc("GET /distro/admin/connections", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"count": s.transportCount(), "clients": s.Clients(), "connections": s.Connections()})
	})
	mux.HandleFunc("POST /distro/admin/connections/reset", s.resetHandler)
}

func (s *Server) resetHandler(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "cannot read parameters: " + err.Error()})
		return
	}
	count := 0
	if v := strings.TrimSpace(r.Form.Get("count")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "count must be a non-negative integer"})
			return
		}
		count = n
	}
	var ip, port string
	if v := strings.TrimSpace(r.Form.Get("redirect")); v != "" {
		h, p, err := net.SplitHostPort(v)
		pn, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || pn < 1 || pn > 65535 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "redirect must be ip:port (the target's HTTP port)"})
			return
		}
		ip, port = h, p
	}
	n := s.Reset(count, strings.TrimSpace(r.Form.Get("connectionId")), ip, port)
	writeJSON(w, http.StatusOK, map[string]any{"reset": n})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
