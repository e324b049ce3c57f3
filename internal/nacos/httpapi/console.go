package httpapi

import (
	"net/http"
	"strings"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/namespace"
)

// The Nacos console's namespace API (/v1/console/namespaces), in the shape
// the console and the SDKs' admin calls use. Namespaces are CP data: writes
// are answered after the Raft commit.

func (a *API) mountConsole() {
	if a.cfg.Namespaces == nil {
		return
	}
	m := a.mux
	const p = "/nacos/v1/console/namespaces"
	m.HandleFunc("GET "+p, a.read(a.linearizable(a.getNamespaces)))
	m.HandleFunc("POST "+p, a.read(a.createNamespace))
	m.HandleFunc("PUT "+p, a.read(a.updateNamespace))
	m.HandleFunc("DELETE "+p, a.read(a.deleteNamespace))
}

// nsJSON is the Nacos Namespace (and NamespaceAllInfo) shape. The default
// namespace has the empty id on this API, as in Nacos 1.x/2.x.
func nsJSON(ns namespace.Namespace) map[string]any {
	id, typ := ns.ID, 2
	if namespace.IsDefault(id) {
		id, typ = "", 0
	}
	return map[string]any{"namespace": id, "namespaceShowName": ns.Name, "namespaceDesc": ns.Desc,
		"quota": 200, "configCount": 0, "type": typ}
}

func (a *API) getNamespaces(_ *http.Request, p *params) reply {
	reg := a.cfg.Namespaces
	switch {
	case model.ParseBool(p.Get("checkNamespaceIdExist"), false):
		id := strings.TrimSpace(p.Get("customNamespaceId"))
		if id == "" {
			return okJSON([]byte("false"))
		}
		return marshal(reg.Exists(id))
	case p.Get("show") == "all" || p.Has("namespaceId"):
		id := strings.TrimSpace(p.Get("namespaceId"))
		ns, ok := reg.Get(id)
		if !ok {
			return errReply(namespace.NotFound(id))
		}
		return marshal(nsJSON(ns))
	}
	list := reg.List()
	data := make([]map[string]any, 0, len(list))
	for _, ns := range list {
		data = append(data, nsJSON(ns))
	}
	return marshal(map[string]any{"code": 200, "message": nil, "data": data})
}

func (a *API) createNamespace(r *http.Request, p *params) reply {
	ns := namespace.Namespace{ID: first(p, "customNamespaceId", "namespaceId"), Name: p.Get("namespaceName"), Desc: p.Get("namespaceDesc")}
	if _, err := a.cfg.Namespaces.Create(r.Context(), ns); err != nil {
		return errReply(err)
	}
	return okJSON([]byte("true"))
}

func (a *API) updateNamespace(r *http.Request, p *params) reply {
	ns := namespace.Namespace{ID: strings.TrimSpace(first(p, "namespace", "namespaceId")), Name: first(p, "namespaceShowName", "namespaceName"), Desc: p.Get("namespaceDesc")}
	if ns.ID == "" {
		return badRequest("Param 'namespace' is required.")
	}
	if err := a.cfg.Namespaces.Update(r.Context(), ns); err != nil {
		return errReply(err)
	}
	return okJSON([]byte("true"))
}

func (a *API) deleteNamespace(r *http.Request, p *params) reply {
	id := strings.TrimSpace(p.Get("namespaceId"))
	if id == "" {
		return badRequest("Param 'namespaceId' is required.")
	}
	if err := a.cfg.Namespaces.Delete(r.Context(), id); err != nil {
		return errReply(err)
	}
	return okJSON([]byte("true"))
}
