package console

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/store"
)

var funcs = template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format("15:04:05")
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05 MST")
	},
	"num": func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"sub": func(a, b int) int { return a - b },
}

// serviceQuery is a service's identity in URLs and forms.
func serviceQuery(k model.ServiceKey) url.Values {
	return url.Values{"ns": {k.Namespace}, "group": {k.Group}, "name": {k.Name}}
}

func serviceURL(base string, k model.ServiceKey) string {
	return base + "service?" + serviceQuery(k).Encode()
}

func instanceQuery(k model.ServiceKey, ik model.InstanceKey) url.Values {
	q := serviceQuery(k)
	q.Set("ip", ik.IP)
	q.Set("port", strconv.Itoa(ik.Port))
	q.Set("cluster", ik.Cluster)
	return q
}

// domID is a stable element id for an instance, so that focus survives the
// live fragment being replaced (htmx restores focus by id).
func domID(ik model.InstanceKey) string {
	h := fnv.New64a()
	h.Write([]byte(ik.String()))
	return "i" + strconv.FormatUint(h.Sum64(), 36)
}

// serviceKeyFrom reads the service named by a request's ns, group and name.
func (c *Console) serviceKeyFrom(q url.Values) (model.ServiceKey, error) {
	return c.cfg.Limits.ParseServiceKey(q.Get("ns"), q.Get("group"), q.Get("name"))
}

// ---- home: overview and namespaces -------------------------------------

type nsRow struct {
	Name                         string
	URL                          string
	Services, Instances, Healthy int
}

type homeData struct {
	Namespaces                   []nsRow
	Services, Instances, Healthy int
	Members                      []stateCount
	Standalone                   bool
	Chart                        chart
}

type stateCount struct {
	State string
	Count int
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, req *request) {
	d := homeData{Standalone: c.cfg.Cluster == nil}
	byNS := map[string]*nsRow{}
	for _, k := range c.cfg.Store.ServiceKeys("") {
		if !c.auth.CanRead(req.user, k) {
			continue
		}
		row := byNS[k.Namespace]
		if row == nil {
			row = &nsRow{Name: k.Namespace, URL: req.base + "services?" + url.Values{"ns": {k.Namespace}}.Encode()}
			byNS[k.Namespace] = row
		}
		row.Services++
		if v := c.cfg.Store.View(k); v != nil {
			row.Instances += len(v.Instances)
			for _, in := range v.Instances {
				if in.Healthy {
					row.Healthy++
				}
			}
		}
	}
	if byNS[model.DefaultNamespace] == nil {
		byNS[model.DefaultNamespace] = &nsRow{Name: model.DefaultNamespace,
			URL: req.base + "services?" + url.Values{"ns": {model.DefaultNamespace}}.Encode()}
	}
	for _, row := range byNS {
		d.Namespaces = append(d.Namespaces, *row)
		d.Services += row.Services
		d.Instances += row.Instances
		d.Healthy += row.Healthy
	}
	slices.SortFunc(d.Namespaces, func(a, b nsRow) int { return strings.Compare(a.Name, b.Name) })
	if c.cfg.Cluster != nil {
		counts := map[member.State]int{}
		for _, m := range c.cfg.Cluster.Members() {
			counts[m.State]++
		}
		for _, st := range []member.State{member.StateUp, member.StateSuspicious, member.StateDown} {
			d.Members = append(d.Members, stateCount{string(st), counts[st]})
		}
	}
	d.Chart = buildChart("rates", "Writes and expiries per second", "events per second", rates(c.sampler.points()), sampleWindow)
	c.renderLive(w, r, req, "home", c.newPage(r, req, "home", "Overview", d))
}

// ---- service list ------------------------------------------------------

type serviceRow struct {
	Key                                    model.ServiceKey
	URL                                    string
	Clusters, Instances, Healthy, Disabled int
	Owner                                  string
	OwnerSelf                              bool
}

type servicesData struct {
	NS, Group, Query, Owner string
	HideEmpty               bool
	Namespaces              []string
	Owners                  []string
	Rows                    []serviceRow
	Total                   int
	Page, Pages, Size       int
	Sizes                   []int
	PrevURL, NextURL        string
	FirstRow, LastRow       int
	Clustered               bool
}

var pageSizes = []int{10, 20, 50, 100}

func (c *Console) services(w http.ResponseWriter, r *http.Request, req *request) {
	q := r.URL.Query()
	d := servicesData{NS: strings.TrimSpace(q.Get("ns")), Group: strings.TrimSpace(q.Get("group")), Query: strings.TrimSpace(q.Get("q")),
		Owner: strings.TrimSpace(q.Get("owner")), HideEmpty: q.Get("hideEmpty") != "", Size: 20, Sizes: pageSizes, Clustered: c.cfg.Cluster != nil}
	if n, err := strconv.Atoi(q.Get("size")); err == nil && slices.Contains(pageSizes, n) {
		d.Size = n
	}
	d.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n < 1<<20 {
		d.Page = n
	}
	all := c.cfg.Store.ServiceKeys("")
	seenNS := map[string]bool{model.DefaultNamespace: true}
	var rows []serviceRow
	for _, k := range all {
		if !c.auth.CanRead(req.user, k) {
			continue
		}
		seenNS[k.Namespace] = true
		if (d.NS != "" && k.Namespace != d.NS) || !containsFold(k.Group, d.Group) || !containsFold(k.Name, d.Query) {
			continue
		}
		row := serviceRow{Key: k, URL: serviceURL(req.base, k)}
		if c.cfg.Cluster != nil {
			row.Owner = c.cfg.Cluster.Owner(k)
			row.OwnerSelf = row.Owner == c.self
			if d.Owner != "" && row.Owner != d.Owner {
				continue
			}
		}
		if d.HideEmpty {
			c.countInstances(&row)
			if row.Instances == 0 {
				continue
			}
		}
		rows = append(rows, row)
	}
	for ns := range seenNS {
		d.Namespaces = append(d.Namespaces, ns)
	}
	slices.Sort(d.Namespaces)
	if c.cfg.Cluster != nil {
		for _, m := range c.cfg.Cluster.Members() {
			d.Owners = append(d.Owners, m.Address)
		}
	}
	d.Total = len(rows)
	d.Pages = max(1, (d.Total+d.Size-1)/d.Size)
	d.Page = min(d.Page, d.Pages)
	start := (d.Page - 1) * d.Size
	end := min(start+d.Size, d.Total)
	d.Rows = rows[start:end]
	for i := range d.Rows {
		if !d.HideEmpty {
			c.countInstances(&d.Rows[i])
		}
	}
	if d.Total > 0 {
		d.FirstRow, d.LastRow = start+1, end
	}
	pageURL := func(n int) string {
		pq := url.Values{}
		for _, kv := range [][2]string{{"ns", d.NS}, {"group", d.Group}, {"q", d.Query}, {"owner", d.Owner}} {
			if kv[1] != "" {
				pq.Set(kv[0], kv[1])
			}
		}
		if d.HideEmpty {
			pq.Set("hideEmpty", "on")
		}
		pq.Set("size", strconv.Itoa(d.Size))
		pq.Set("page", strconv.Itoa(n))
		return req.base + "services?" + pq.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = pageURL(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = pageURL(d.Page + 1)
	}
	c.renderLive(w, r, req, "services", c.newPage(r, req, "services", "Services", d))
}

func (c *Console) countInstances(row *serviceRow) {
	v := c.cfg.Store.View(row.Key)
	if v == nil {
		return
	}
	clusters := map[string]bool{}
	for _, in := range v.Instances {
		row.Instances++
		clusters[in.Cluster] = true
		if in.Healthy {
			row.Healthy++
		}
		if !in.Enabled {
			row.Disabled++
		}
	}
	row.Clusters = len(clusters)
}

func containsFold(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// ---- service detail ----------------------------------------------------

type kv struct{ K, V string }

type instanceRow struct {
	ID                          string
	Key                         model.InstanceKey
	Weight                      float64
	Healthy, Enabled, Ephemeral bool
	// TimedOut: unhealthy because heartbeats stopped (not the client's flag).
	TimedOut bool
	Metadata []kv
	// Liveness tells where the instance's liveness comes from: a
	// heartbeat time, a gRPC connection, or the owner that tracks it.
	LastBeat  time.Time
	Liveness  string
	OwnerURL  string
	Fields    url.Values
	EditURL   string
	DeregURL  string
	CanChange bool
}

type clusterGroup struct {
	Name             string
	Instances        []instanceRow
	Healthy, Enabled int
	// Checker describes the server-side health check of its persistent
	// instances ("" for none).
	Checker string
}

type serviceData struct {
	Key                          model.ServiceKey
	Fields                       url.Values
	Found                        bool
	ProtectThreshold             float64
	Protecting                   bool
	Metadata                     []kv
	Selector                     string
	Revision                     uint64
	LastRefTime                  int64
	Owner                        string
	OwnerSelf                    bool
	OwnerURL                     string
	Clusters                     []clusterGroup
	Instances, Healthy, Disabled int
	Subscribers                  []Subscriber
	CanChange                    bool
	EditURL, DeleteURL           string
	ListURL                      string
}

func (c *Console) service(w http.ResponseWriter, r *http.Request, req *request) {
	k, err := c.serviceKeyFrom(r.URL.Query())
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !c.auth.CanRead(req.user, k) {
		c.fail(w, r, http.StatusForbidden, "You may not see this service.")
		return
	}
	d := c.serviceData(req, k)
	title := k.Name
	if !d.Found {
		title = "Service not found"
	}
	c.renderLive(w, r, req, "service", c.newPage(r, req, "services", title, d))
}

func (c *Console) serviceData(req *request, k model.ServiceKey) serviceData {
	d := serviceData{Key: k, Fields: serviceQuery(k), CanChange: c.auth.CanWrite(req.user, k),
		EditURL: req.base + "service/edit?" + serviceQuery(k).Encode(), DeleteURL: req.base + "service/delete?" + serviceQuery(k).Encode(),
		ListURL: req.base + "services?" + url.Values{"ns": {k.Namespace}}.Encode()}
	v := c.cfg.Store.View(k)
	if v == nil {
		return d
	}
	d.Found, d.Revision, d.LastRefTime = true, v.Revision, v.LastRefTime
	if v.Meta != nil {
		d.ProtectThreshold = v.Meta.ProtectThreshold
		d.Metadata = sortedKV(v.Meta.Metadata)
		d.Selector = selectorText(v.Meta.Selector)
	}
	_, d.Protecting = render.Select(v, "", false)
	if c.cfg.Cluster != nil {
		d.Owner = c.cfg.Cluster.Owner(k)
		d.OwnerSelf = d.Owner == c.self
		if !d.OwnerSelf {
			d.OwnerURL = peerURL(d.Owner, serviceURL(req.base, k))
		}
	}
	recs, _ := c.cfg.Store.Records(k, nil)
	byKey := make(map[model.InstanceKey]*store.Record, len(recs))
	for _, rec := range recs {
		byKey[rec.Key()] = rec
	}
	groups := map[string]*clusterGroup{}
	for _, in := range v.Instances {
		ik := in.Key()
		row := instanceRow{ID: domID(ik), Key: ik, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral,
			Metadata: sortedKV(in.Metadata), Fields: instanceQuery(k, ik), CanChange: d.CanChange,
			EditURL:  req.base + "instance?" + instanceQuery(k, ik).Encode(),
			DeregURL: req.base + "instance/deregister?" + instanceQuery(k, ik).Encode()}
		g := groups[ik.Cluster]
		if g == nil {
			g = &clusterGroup{Name: ik.Cluster, Checker: c.checker(v.Meta, ik.Cluster)}
			groups[ik.Cluster] = g
		}
		rec := byKey[ik]
		row.TimedOut = rec != nil && rec.Kind == store.KindUnhealthy
		c.liveness(&row, rec, k, d, g.Checker)
		g.Instances = append(g.Instances, row)
		d.Instances++
		if in.Healthy {
			g.Healthy++
			d.Healthy++
		}
		if in.Enabled {
			g.Enabled++
		} else {
			d.Disabled++
		}
	}
	for _, g := range groups {
		d.Clusters = append(d.Clusters, *g)
	}
	slices.SortFunc(d.Clusters, func(a, b clusterGroup) int { return strings.Compare(a.Name, b.Name) })
	if c.cfg.Subscribers != nil {
		d.Subscribers = c.cfg.Subscribers(k)
	}
	return d
}

// checker describes cluster cl's server-side health check ("" for none).
func (c *Console) checker(meta *model.ServiceMeta, cl string) string {
	cm := meta.Cluster(cl, c.cfg.DefaultCheck)
	switch cm.HealthChecker.Type {
	case "", model.CheckNone:
		return ""
	case model.CheckHTTP:
		return "HTTP check of " + cm.HealthChecker.Path
	}
	if !cm.UseInstancePort {
		return cm.HealthChecker.Type + " check of port " + strconv.Itoa(cm.CheckPort)
	}
	return cm.HealthChecker.Type + " check"
}

// liveness fills in where an instance's liveness is judged.
func (c *Console) liveness(row *instanceRow, rec *store.Record, k model.ServiceKey, d serviceData, checker string) {
	switch {
	case rec != nil && rec.Conn != "":
		node := rec.ConnNode
		if node == c.self {
			node = "this node"
		}
		row.Liveness = fmt.Sprintf("gRPC connection %s on %s", rec.Conn, node)
	case !row.Ephemeral && checker != "":
		row.Liveness = "persistent; server-side " + checker + ""
	case !row.Ephemeral:
		row.Liveness = "persistent, not checked (no heartbeats, no health checker)"
	default:
		if c.cfg.LastBeat != nil {
			if at, tracked := c.cfg.LastBeat(k, row.Key); tracked {
				row.LastBeat = at
				if at.IsZero() {
					row.Liveness = "no heartbeat here yet (grace period after an ownership change)"
				}
				return
			}
		}
		if d.Owner != "" && !d.OwnerSelf {
			row.Liveness = "heartbeats checked by the owner " + d.Owner
			row.OwnerURL = d.OwnerURL
		} else {
			row.Liveness = "heartbeats (not tracked yet)"
		}
	}
}

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range model.SortedKeys(m) {
		out = append(out, kv{k, m[k]})
	}
	return out
}

func selectorText(s model.Selector) string {
	b, err := json.Marshal(s)
	if err != nil {
		return ""
	}
	return string(b)
}

// peerURL is the address of the same console page on another member.
// Member identities are host:port with the HTTP port.
func peerURL(addr, path string) string {
	return "http://" + addr + path
}

// ---- cluster -----------------------------------------------------------

type memberRow struct {
	Address     string
	URL         string
	Self        bool
	State       string
	LastContact time.Time
	Since       string
	LastError   string
	FailCount   int
	Owned       int
	OwnedURL    string
	Peer        *peerRow
}

type peerRow struct {
	QueueDepth     int
	Synced         uint64
	MeanLatency    string
	LastSync       time.Time
	LastVerify     time.Time
	VerifyErr      string
	LastVerifiedBy time.Time
	Repaired       uint64
}

type clusterData struct {
	Standalone bool
	Members    []memberRow
	Services   int
	Latency    chart
	Rates      chart
}

func (c *Console) cluster(w http.ResponseWriter, r *http.Request, req *request) {
	d := clusterData{Standalone: c.cfg.Cluster == nil}
	now := c.cfg.Clock.Now()
	owned := map[string]int{}
	for _, k := range c.cfg.Store.ServiceKeys("") {
		d.Services++
		owner := c.self
		if c.cfg.Cluster != nil {
			owner = c.cfg.Cluster.Owner(k)
		}
		owned[owner]++
	}
	var members []member.MemberStatus
	peers := map[string]peerRow{}
	if c.cfg.Cluster != nil {
		members = c.cfg.Cluster.Members()
		for _, p := range c.cfg.Cluster.Peers() {
			pr := peerRow{QueueDepth: p.QueueDepth, Synced: p.Synced, MeanLatency: "–", LastSync: p.LastSync, LastVerify: p.LastVerify,
				VerifyErr: p.VerifyErr, LastVerifiedBy: p.LastVerifiedBy, Repaired: p.Repaired}
			if p.Synced > 0 {
				pr.MeanLatency = fmtDuration(p.SyncLatency / time.Duration(p.Synced))
			}
			peers[p.Addr] = pr
		}
	}
	if !slices.ContainsFunc(members, func(m member.MemberStatus) bool { return m.Address == c.self }) {
		members = append(members, member.MemberStatus{Address: c.self, State: member.StateUp, LastContact: now})
	}
	for _, m := range members {
		row := memberRow{Address: m.Address, Self: m.Address == c.self, State: string(m.State), LastContact: m.LastContact,
			LastError: m.LastError, FailCount: m.FailCount, Owned: owned[m.Address],
			OwnedURL: req.base + "services?" + url.Values{"owner": {m.Address}}.Encode()}
		if !row.Self {
			row.URL = peerURL(m.Address, req.base+"cluster")
			if !m.LastContact.IsZero() {
				row.Since = fmtDuration(now.Sub(m.LastContact)) + " ago"
			}
			if p, ok := peers[m.Address]; ok {
				row.Peer = &p
			}
		}
		d.Members = append(d.Members, row)
	}
	slices.SortFunc(d.Members, func(a, b memberRow) int { return strings.Compare(a.Address, b.Address) })
	pts := c.sampler.points()
	d.Latency = buildChart("latency", "Sync latency per peer", "milliseconds (change to acknowledgement)", syncLatency(pts), sampleWindow)
	d.Rates = buildChart("rates", "Writes and expiries per second", "events per second", rates(pts), sampleWindow)
	c.renderLive(w, r, req, "cluster", c.newPage(r, req, "cluster", "Cluster", d))
}

// fmtDuration prints a duration briefly: 850ms, 3.2s, 4m10s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return strconv.Itoa(int(math.Round(float64(d)/float64(time.Millisecond)))) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Truncate(time.Second).String()
}
