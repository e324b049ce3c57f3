package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

// writeTimeout bounds one change (it may be handed to the owner).
const writeTimeout = 10 * time.Second

// instanceFrom reads the instance a request names.
func (c *Console) instanceFrom(q url.Values) (model.ServiceKey, model.InstanceKey, error) {
	k, err := c.serviceKeyFrom(q)
	if err != nil {
		return k, model.InstanceKey{}, err
	}
	ip, err := model.ValidateIP(q.Get("ip"))
	if err != nil {
		return k, model.InstanceKey{}, err
	}
	port, err := model.ParsePort(q.Get("port"))
	if err != nil {
		return k, model.InstanceKey{}, err
	}
	cl, err := c.cfg.Limits.ValidateCluster(q.Get("cluster"))
	if err != nil {
		return k, model.InstanceKey{}, err
	}
	return k, model.InstanceKey{IP: ip, Port: port, Cluster: cl}, nil
}

// instanceTarget reads the instance q names and checks that the user may
// change it; on failure it has answered.
func (c *Console) instanceTarget(w http.ResponseWriter, r *http.Request, req *request, q url.Values) (model.ServiceKey, model.InstanceKey, bool) {
	k, ik, err := c.instanceFrom(q)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return k, ik, false
	}
	if !c.auth.CanWrite(req.user, k) {
		c.fail(w, r, http.StatusForbidden, c.readOnlyMsg())
		return k, ik, false
	}
	return k, ik, true
}

// serviceTarget is instanceTarget for a service.
func (c *Console) serviceTarget(w http.ResponseWriter, r *http.Request, req *request, q url.Values) (model.ServiceKey, bool) {
	k, err := c.serviceKeyFrom(q)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return k, false
	}
	if !c.auth.CanWrite(req.user, k) {
		c.fail(w, r, http.StatusForbidden, c.readOnlyMsg())
		return k, false
	}
	return k, true
}

// instancePost reads a change's form and its target instance.
func (c *Console) instancePost(w http.ResponseWriter, r *http.Request, req *request) (url.Values, model.ServiceKey, model.InstanceKey, bool) {
	f, ok := c.form(w, r)
	if !ok {
		return nil, model.ServiceKey{}, model.InstanceKey{}, false
	}
	k, ik, ok := c.instanceTarget(w, r, req, f)
	return f, k, ik, ok
}

// servicePost reads a change's form and its target service.
func (c *Console) servicePost(w http.ResponseWriter, r *http.Request, req *request) (url.Values, model.ServiceKey, bool) {
	f, ok := c.form(w, r)
	if !ok {
		return nil, model.ServiceKey{}, false
	}
	k, ok := c.serviceTarget(w, r, req, f)
	return f, k, ok
}

// lookup returns the present instance ik of k, or nil.
func (c *Console) lookup(k model.ServiceKey, ik model.InstanceKey) *model.Instance {
	v := c.cfg.Store.View(k)
	if v == nil {
		return nil
	}
	for _, in := range v.Instances {
		if in.Key() == ik {
			return in
		}
	}
	return nil
}

// patchBase is the instance a patch of ik starts from: its identity and
// whether it is ephemeral, which decides the consistency protocol that
// applies the patch (Distro for ephemeral instances, Raft for persistent
// ones). An unknown instance is taken as ephemeral, so that the registry
// answers that it does not exist.
func (c *Console) patchBase(k model.ServiceKey, ik model.InstanceKey) model.Instance {
	in := model.Instance{IP: ik.IP, Port: ik.Port, Cluster: ik.Cluster, Ephemeral: true}
	if cur := c.lookup(k, ik); cur != nil {
		in.Ephemeral = cur.Ephemeral
	}
	return in
}

// readOnlyMsg explains why a change is refused.
func (c *Console) readOnlyMsg() string {
	if c.auth.Enabled() {
		return "You do not have write permission for this service."
	}
	return "The console is read-only. Start distrod with --console-edit (or DISTRO_CONSOLE_EDIT=true) to allow changes from the console."
}

// form parses a POST body within the request limits.
func (c *Console) form(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, c.cfg.Limits.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		c.fail(w, r, status, "Unreadable form: "+err.Error())
		return nil, false
	}
	// Both the body and the query: the instance a row's button changes
	// is named in its form's action URL.
	return r.Form, true
}

// apply hands op to the write path, as a client write.
func (c *Console) apply(r *http.Request, op *registry.Op) error {
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	_, err := c.cfg.Writer.Apply(ctx, op)
	if err == nil {
		c.cfg.Logger.Info("console change", "op", op.Kind.String(), "service", op.Key.String(), "instance", op.Instance.Key().String(),
			"user", c.userName(r), "remote", r.RemoteAddr)
	}
	return err
}

func (c *Console) userName(r *http.Request) string {
	if p, ok := c.authenticate(r); ok && p.Name != "" {
		return p.Name
	}
	return "-"
}

// done redirects to the service page with a confirmation.
func done(w http.ResponseWriter, r *http.Request, base string, k model.ServiceKey, code, anchor string) {
	q := serviceQuery(k)
	q.Set("done", code)
	target := base + "service?" + q.Encode()
	if anchor != "" {
		target += "#" + anchor
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// ---- instance: edit, enable/disable, deregister ----------------------------

type instanceFormData struct {
	Key      model.ServiceKey
	Instance model.InstanceKey
	Fields   url.Values
	Weight   string
	Enabled  bool
	Metadata string
	Error    string
	Back     string
}

func metadataJSON(md map[string]string) string {
	if len(md) == 0 {
		return ""
	}
	b, err := json.MarshalIndent(md, "", "  ") // keys sorted
	if err != nil {
		return ""
	}
	return string(b)
}

func (c *Console) instanceForm(w http.ResponseWriter, r *http.Request, req *request) {
	k, ik, ok := c.instanceTarget(w, r, req, r.URL.Query())
	if !ok {
		return
	}
	in := c.lookup(k, ik)
	if in == nil {
		c.fail(w, r, http.StatusNotFound, "Instance "+ik.String()+" is not registered in "+k.Grouped()+".")
		return
	}
	d := instanceFormData{Key: k, Instance: ik, Fields: instanceQuery(k, ik), Weight: strconv.FormatFloat(in.Weight, 'f', -1, 64),
		Enabled: in.Enabled, Metadata: metadataJSON(in.Metadata), Back: serviceURL(req.base, k) + "#" + domID(ik)}
	c.render(w, http.StatusOK, "instance", c.newPage(r, req, "services", "Edit "+ik.IP+":"+strconv.Itoa(ik.Port), d))
}

func (c *Console) instanceEdit(w http.ResponseWriter, r *http.Request, req *request) {
	f, k, ik, ok := c.instancePost(w, r, req)
	if !ok {
		return
	}
	op := &registry.Op{Kind: registry.OpPatch, Key: k, Instance: c.patchBase(k, ik),
		Fields: []registry.Field{registry.FieldWeight, registry.FieldEnabled, registry.FieldMetadata}}
	op.Instance.Enabled = f.Get("enabled") != ""
	var err error
	op.Instance.Weight, err = model.ParseWeight(f.Get("weight"), 1)
	if err == nil {
		op.Instance.Metadata, err = c.cfg.Limits.ParseMetadata(f.Get("metadata"))
	}
	if err == nil {
		err = c.apply(r, op)
	}
	if err != nil {
		// Show the form again with what the user typed and why it failed.
		d := instanceFormData{Key: k, Instance: ik, Fields: instanceQuery(k, ik), Weight: f.Get("weight"), Enabled: op.Instance.Enabled,
			Metadata: f.Get("metadata"), Error: err.Error(), Back: serviceURL(req.base, k) + "#" + domID(ik)}
		c.render(w, registry.StatusOf(err), "instance", c.newPage(r, req, "services", "Edit "+ik.IP+":"+strconv.Itoa(ik.Port), d))
		return
	}
	done(w, r, req.base, k, "updated", domID(ik))
}

func (c *Console) instanceEnabled(w http.ResponseWriter, r *http.Request, req *request) {
	f, k, ik, ok := c.instancePost(w, r, req)
	if !ok {
		return
	}
	op := &registry.Op{Kind: registry.OpPatch, Key: k, Fields: []registry.Field{registry.FieldEnabled}, Instance: c.patchBase(k, ik)}
	op.Instance.Enabled = f.Get("enabled") == "true"
	if err := c.apply(r, op); err != nil {
		c.fail(w, r, registry.StatusOf(err), err.Error())
		return
	}
	code := "disabled"
	if op.Instance.Enabled {
		code = "enabled"
	}
	done(w, r, req.base, k, code, "toggle-"+domID(ik))
}

// confirmData is the data of a confirmation page.
type confirmData struct {
	Question string
	Detail   string
	Action   string
	Fields   url.Values
	Button   string
	Cancel   string
	// Blocked explains why the action cannot be taken; the button is then
	// not offered.
	Blocked string
}

func (c *Console) instanceDeregisterForm(w http.ResponseWriter, r *http.Request, req *request) {
	k, ik, ok := c.instanceTarget(w, r, req, r.URL.Query())
	if !ok {
		return
	}
	d := confirmData{
		Question: "Deregister " + ik.IP + ":" + strconv.Itoa(ik.Port) + " (cluster " + ik.Cluster + ") from " + k.Grouped() + "?",
		Detail: "The instance is removed at once on every node. A client that is still running registers it again " +
			"with its next heartbeat or reconnect; to keep a running instance out of traffic, take it offline instead.",
		Action: req.base + "instance/deregister", Fields: instanceQuery(k, ik), Button: "Deregister",
		Cancel: serviceURL(req.base, k) + "#" + domID(ik)}
	c.render(w, http.StatusOK, "confirm", c.newPage(r, req, "services", "Deregister instance", d))
}

func (c *Console) instanceDeregister(w http.ResponseWriter, r *http.Request, req *request) {
	_, k, ik, ok := c.instancePost(w, r, req)
	if !ok {
		return
	}
	in := model.Instance{IP: ik.IP, Port: ik.Port, Cluster: ik.Cluster, Ephemeral: true, Enabled: true}
	if cur := c.lookup(k, ik); cur != nil {
		in = *cur
	}
	if err := c.apply(r, &registry.Op{Kind: registry.OpDeregister, Key: k, Instance: in}); err != nil {
		c.fail(w, r, registry.StatusOf(err), err.Error())
		return
	}
	done(w, r, req.base, k, "deregistered", "")
}

// ---- service: settings, delete -----------------------------------------

type serviceFormData struct {
	Key              model.ServiceKey
	Fields           url.Values
	ProtectThreshold string
	Metadata         string
	Error            string
	Back             string
}

func (c *Console) serviceEditForm(w http.ResponseWriter, r *http.Request, req *request) {
	k, ok := c.serviceTarget(w, r, req, r.URL.Query())
	if !ok {
		return
	}
	v := c.cfg.Store.View(k)
	if v == nil {
		c.fail(w, r, http.StatusNotFound, "Service "+k.Grouped()+" does not exist in namespace "+k.Namespace+".")
		return
	}
	d := serviceFormData{Key: k, Fields: serviceQuery(k), ProtectThreshold: "0", Back: serviceURL(req.base, k)}
	if v.Meta != nil {
		d.ProtectThreshold = strconv.FormatFloat(v.Meta.ProtectThreshold, 'f', -1, 64)
		d.Metadata = metadataJSON(v.Meta.Metadata)
	}
	c.render(w, http.StatusOK, "service-edit", c.newPage(r, req, "services", "Edit "+k.Name, d))
}

func (c *Console) serviceEdit(w http.ResponseWriter, r *http.Request, req *request) {
	f, k, ok := c.servicePost(w, r, req)
	if !ok {
		return
	}
	op := &registry.Op{Kind: registry.OpUpdateService, Key: k}
	if v := c.cfg.Store.View(k); v != nil && v.Meta != nil {
		op.Service.Selector = v.Meta.Selector // not edited here: keep it
	}
	var err error
	op.Service.ProtectThreshold, err = model.ParseProtectThreshold(strings.TrimSpace(f.Get("protectThreshold")))
	if err == nil {
		op.Service.Metadata, err = c.cfg.Limits.ParseMetadata(f.Get("metadata"))
	}
	if err == nil {
		err = c.apply(r, op)
	}
	if err != nil {
		d := serviceFormData{Key: k, Fields: serviceQuery(k), ProtectThreshold: f.Get("protectThreshold"), Metadata: f.Get("metadata"),
			Error: err.Error(), Back: serviceURL(req.base, k)}
		c.render(w, registry.StatusOf(err), "service-edit", c.newPage(r, req, "services", "Edit "+k.Name, d))
		return
	}
	done(w, r, req.base, k, "service-updated", "")
}

func (c *Console) serviceDeleteForm(w http.ResponseWriter, r *http.Request, req *request) {
	k, ok := c.serviceTarget(w, r, req, r.URL.Query())
	if !ok {
		return
	}
	d := confirmData{Question: "Delete service " + k.Grouped() + " in namespace " + k.Namespace + "?",
		Detail: "Its settings (protect threshold, metadata, selector) are removed on every node.",
		Action: req.base + "service/delete", Fields: serviceQuery(k), Button: "Delete service", Cancel: serviceURL(req.base, k)}
	if v := c.cfg.Store.View(k); v != nil && len(v.Instances) > 0 {
		d.Blocked = "The service still has " + strconv.Itoa(len(v.Instances)) + " instance(s). As in Nacos, only an empty service can be deleted: deregister its instances (or stop their clients) first."
	}
	c.render(w, http.StatusOK, "confirm", c.newPage(r, req, "services", "Delete service", d))
}

func (c *Console) serviceDelete(w http.ResponseWriter, r *http.Request, req *request) {
	_, k, ok := c.servicePost(w, r, req)
	if !ok {
		return
	}
	if err := c.apply(r, &registry.Op{Kind: registry.OpDeleteService, Key: k}); err != nil {
		c.fail(w, r, registry.StatusOf(err), err.Error())
		return
	}
	q := url.Values{"ns": {k.Namespace}, "done": {"service-deleted"}}
	http.Redirect(w, r, req.base+"services?"+q.Encode(), http.StatusSeeOther)
}

// ---- login ---------------------------------------------------------------

type loginData struct {
	Next     string
	Username string
	Error    string
}

// safeNext keeps a post-login target inside the console.
func safeNext(next, base string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return base
	}
	for _, b := range Bases {
		if strings.HasPrefix(u.Path, b) && !strings.HasSuffix(u.Path, "/login") {
			return u.RequestURI()
		}
	}
	return base
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, req *request) {
	if !c.auth.Enabled() {
		http.Redirect(w, r, req.base, http.StatusSeeOther)
		return
	}
	d := loginData{Next: safeNext(r.URL.Query().Get("next"), req.base)}
	c.render(w, http.StatusOK, "login", c.newPage(r, req, "login", "Log in", d))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request, req *request) {
	if !c.auth.Enabled() {
		http.Redirect(w, r, req.base, http.StatusSeeOther)
		return
	}
	f, ok := c.form(w, r)
	if !ok {
		return
	}
	d := loginData{Next: safeNext(f.Get("next"), req.base), Username: f.Get("username")}
	token, ttl, err := c.auth.Login(r.Context(), f.Get("username"), f.Get("password"), r.RemoteAddr)
	if err != nil {
		d.Error = ErrBadCredentials.Error()
		if !errors.Is(err, ErrBadCredentials) {
			d.Error = err.Error()
		}
		// Without the typed name: people type their password there.
		c.cfg.Logger.Info("console login refused", "remote", r.RemoteAddr)
		// 200: the answer is the login form again, with the reason; an error
		// status would only add a console error in the user's browser.
		c.render(w, http.StatusOK, "login", c.newPage(r, req, "login", "Log in", d))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: token, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, req *request) {
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, req.base+"login?done=logged-out", http.StatusSeeOther)
}
