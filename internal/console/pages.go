package console

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"maps"
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
	for _, k := range c.serviceKeys() {
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
	if c.cfg.Cluster != nil && c.mayManage(req.user) {
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
	// The list changes only with the store or with member states (which
	// move owners): a poll that saw the same state is answered at once.
	state := c.listState()
	if req.live && q.Get("s") == state {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.URL.RawQuery = withParam(q, "s", state)
	d := servicesData{NS: strings.TrimSpace(q.Get("ns")), Group: strings.TrimSpace(q.Get("group")), Query: strings.TrimSpace(q.Get("q")),
		Owner: strings.TrimSpace(q.Get("owner")), HideEmpty: q.Get("hideEmpty") != "", Size: 20, Sizes: pageSizes, Clustered: c.cfg.Cluster != nil}
	if n, err := strconv.Atoi(q.Get("size")); err == nil && slices.Contains(pageSizes, n) {
		d.Size = n
	}
	d.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n < 1<<20 {
		d.Page = n
	}
	all := c.serviceKeys()
	seenNS := map[string]bool{model.DefaultNamespace: true}
	var keys []model.ServiceKey // the matching services; rows only for the page
	for _, k := range all {
		if !c.auth.CanRead(req.user, k) {
			continue
		}
		seenNS[k.Namespace] = true
		if (d.NS != "" && k.Namespace != d.NS) || !containsFold(k.Group, d.Group) || !containsFold(k.Name, d.Query) {
			continue
		}
		if d.Owner != "" && c.cfg.Cluster != nil && c.cfg.Cluster.Owner(k) != d.Owner {
			continue
		}
		if d.HideEmpty {
			if v := c.cfg.Store.View(k); v == nil || len(v.Instances) == 0 {
				continue
			}
		}
		keys = append(keys, k)
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
	d.Total = len(keys)
	d.Pages = max(1, (d.Total+d.Size-1)/d.Size)
	d.Page = min(d.Page, d.Pages)
	start := (d.Page - 1) * d.Size
	end := min(start+d.Size, d.Total)
	for _, k := range keys[start:end] {
		row := serviceRow{Key: k, URL: serviceURL(req.base, k)}
		if c.cfg.Cluster != nil {
			row.Owner = c.cfg.Cluster.Owner(k)
			row.OwnerSelf = row.Owner == c.self
		}
		c.countInstances(&row)
		d.Rows = append(d.Rows, row)
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

// listState names what the service list depends on: the store revision and
// the members' states.
func (c *Console) listState() string {
	st := strconv.FormatUint(c.cfg.Store.Revision(), 36)
	if c.cfg.Cluster != nil {
		h := fnv.New64a()
		for _, m := range c.cfg.Cluster.Members() {
			h.Write([]byte(m.Address))
			h.Write([]byte(m.State))
		}
		st += "." + strconv.FormatUint(h.Sum64(), 36)
	}
	return st
}

func withParam(q url.Values, k, v string) string {
	q = maps.Clone(q)
	q.Set(k, v)
	return q.Encode()
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
	// CheckFailed: a persistent instance a server-side health check found down.
	CheckFailed bool
	Metadata    []kv
	// Liveness tells where the instance's liveness comes from: a
	// heartbeat time, a gRPC connection, or the owner that tracks it.
	LastBeat time.Time
	Liveness string
	OwnerURL string
	// ToggleURL takes it offline or back online (POST, with enabled);
	// EditURL and DeregURL open its forms.
	ToggleURL, EditURL, DeregURL string
	CanChange                    bool
}

type clusterGroup struct {
	Name string
	// Instances are the rows shown (this page); Total, Healthy and Enabled
	// count the whole cluster.
	Instances               []instanceRow
	Total, Healthy, Enabled int
	// Checker describes the server-side health check of its persistent
	// instances ("" for none).
	Checker string
}

type serviceData struct {
	Key model.ServiceKey
	// Query names the service in forms.
	Query                        url.Values
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
	// Instance search and paging: Filter is the "ip:port contains" text,
	// Matching how many instances it matches, Shown the rows on this page.
	Filter                     string
	Matching, Shown            int
	FirstRow, LastRow          int
	Page, Pages                int
	PrevURL, NextURL, ClearURL string
}

// instancesPerPage bounds a service page (and its every-second refresh):
// html/template costs tens of microseconds per row.
const instancesPerPage = 100

func (c *Console) service(w http.ResponseWriter, r *http.Request, req *request) {
	q := r.URL.Query()
	k, err := c.serviceKeyFrom(q)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !c.auth.CanRead(req.user, k) {
		c.fail(w, r, http.StatusForbidden, "You may not see this service.")
		return
	}
	page := 1
	if n, err := strconv.Atoi(q.Get("ipage")); err == nil && n > 1 && n < 1<<20 {
		page = n
	}
	d := c.serviceData(req, k, strings.TrimSpace(q.Get("ip")), page)
	title := k.Name
	if !d.Found {
		title = "Service not found"
	}
	c.renderLive(w, r, req, "service", c.newPage(r, req, "services", title, d))
}

func (c *Console) serviceData(req *request, k model.ServiceKey, filter string, page int) serviceData {
	sq := serviceQuery(k).Encode()
	d := serviceData{Key: k, Query: serviceQuery(k), CanChange: c.auth.CanWrite(req.user, k), Filter: filter,
		EditURL: req.base + "service/edit?" + sq, DeleteURL: req.base + "service/delete?" + sq,
		ListURL: req.base + "services?" + url.Values{"ns": {k.Namespace}}.Encode(), ClearURL: req.base + "service?" + sq}
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
	// Counts over every instance; rows for the matching ones on this page,
	// in cluster order.
	groups := map[string]*clusterGroup{}
	var match []*model.Instance
	for _, in := range v.Instances {
		g := groups[in.Cluster]
		if g == nil {
			g = &clusterGroup{Name: in.Cluster, Checker: c.checker(v.Meta, in.Cluster)}
			groups[in.Cluster] = g
		}
		g.Total++
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
		if filter == "" || strings.Contains(in.IP+":"+strconv.Itoa(in.Port), filter) {
			match = append(match, in)
		}
	}
	slices.SortStableFunc(match, func(a, b *model.Instance) int { return strings.Compare(a.Cluster, b.Cluster) })
	d.Matching = len(match)
	d.Pages = max(1, (d.Matching+instancesPerPage-1)/instancesPerPage)
	d.Page = min(page, d.Pages)
	start := (d.Page - 1) * instancesPerPage
	end := min(start+instancesPerPage, d.Matching)
	if d.Matching > 0 {
		d.FirstRow, d.LastRow = start+1, end
	}
	pageURL := func(n int) string {
		pq := serviceQuery(k)
		if filter != "" {
			pq.Set("ip", filter)
		}
		pq.Set("ipage", strconv.Itoa(n))
		return req.base + "service?" + pq.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = pageURL(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = pageURL(d.Page + 1)
	}
	shown := match[start:end]
	d.Shown = len(shown)
	// The records behind the rows: Distro's for ephemeral instances, the
	// CP side's (with health check verdicts) for persistent ones.
	var recs, precs []*store.Record
	if len(shown) > 0 {
		var keys, pkeys []model.InstanceKey
		for _, in := range shown {
			if in.Ephemeral {
				keys = append(keys, in.Key())
			} else {
				pkeys = append(pkeys, in.Key())
			}
		}
		if keys != nil {
			recs, _ = c.cfg.Store.Records(k, keys)
		}
		if pkeys != nil {
			precs, _ = c.cfg.Store.PersistentRecords(k, pkeys)
		}
	}
	byKey := make(map[model.InstanceKey]*store.Record, len(recs)+len(precs))
	for _, rec := range recs {
		byKey[rec.Key()] = rec
	}
	for _, rec := range precs {
		byKey[rec.Key()] = rec
	}
	for _, in := range shown {
		ik := in.Key()
		iq := instanceQuery(k, ik).Encode()
		row := instanceRow{ID: domID(ik), Key: ik, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral,
			Metadata: sortedKV(in.Metadata), CanChange: d.CanChange, ToggleURL: req.base + "instance/enabled?" + iq,
			EditURL: req.base + "instance?" + iq, DeregURL: req.base + "instance/deregister?" + iq}
		g := groups[ik.Cluster]
		rec := byKey[ik]
		down := rec != nil && rec.Kind == store.KindUnhealthy
		row.TimedOut, row.CheckFailed = down && in.Ephemeral, down && !in.Ephemeral
		c.liveness(&row, rec, k, d, g.Checker)
		g.Instances = append(g.Instances, row)
	}
	for _, g := range groups {
		if len(g.Instances) > 0 || filter == "" {
			d.Clusters = append(d.Clusters, *g)
		}
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
	if !c.mayManage(req.user) {
		c.fail(w, r, http.StatusForbidden, "The cluster page is for global admins.")
		return
	}
	d := clusterData{Standalone: c.cfg.Cluster == nil}
	now := c.cfg.Clock.Now()
	owned := c.ownedCounts()
	for _, n := range owned {
		d.Services += n
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
