package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleNamespaces: the Nacos console namespace API, and naming writes
// refused in an unknown namespace when validation is on while the default namespace always works.
func TestConsoleNamespaces(t *testing.T) {
	h := newHarness(t)
	h.router.CheckNamespace = h.ns.Check
	const p = "/nacos/v1/console/namespaces"
	var list struct {
		Code int
		Data []struct {
			Namespace, NamespaceShowName, NamespaceDesc string
			Quota, Type                                 int
		}
	}
	decodeJSON(t, h.mustDo(t, "GET", p, ""), &list)
	if list.Code != 200 || len(list.Data) != 1 || list.Data[0].Namespace != "" || list.Data[0].NamespaceShowName != "public" {
		t.Fatalf("initial list %+v", list)
	}
	// Unknown namespace: writes refused, the default ones work.
	w := h.do(t, "POST", "/nacos/v1/ns/instance", "namespaceId=dev&serviceName=s&ip=10.0.0.1&port=80")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Namespace 'dev' does not exist") {
		t.Fatalf("register in unknown namespace: %d %s", w.Code, w.Body.String())
	}
	for _, ns := range []string{"", "public"} {
		h.mustDo(t, "POST", "/nacos/v1/ns/instance", "namespaceId="+ns+"&serviceName=s&ip=10.0.0.1&port=80")
	}
	if got := h.mustDo(t, "POST", p, "customNamespaceId=dev&namespaceName=Dev&namespaceDesc=development").Body.String(); got != "true" {
		t.Fatalf("create answered %q", got)
	}
	for _, bad := range []struct{ body, want string }{
		{"customNamespaceId=dev&namespaceName=Again", "already exist"},
		{"customNamespaceId=public&namespaceName=P", "already exist"},
		{"customNamespaceId=a%20b&namespaceName=X", "illegal namespace"},
		{"customNamespaceId=" + strings.Repeat("x", 129) + "&namespaceName=X", "illegal namespace"},
		{"customNamespaceId=ok&namespaceName=", "namespaceName"},
	} {
		if w := h.do(t, "POST", p, bad.body); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), bad.want) {
			t.Fatalf("create %q: %d %s", bad.body, w.Code, w.Body.String())
		}
	}
	h.mustDo(t, "POST", "/nacos/v1/ns/instance", "namespaceId=dev&serviceName=s&ip=10.0.0.1&port=80")
	// A blank id gets a UUID.
	h.mustDo(t, "POST", p, "namespaceName=Generated")
	decodeJSON(t, h.mustDo(t, "GET", p, ""), &list)
	if len(list.Data) != 3 || list.Data[1].Namespace == "" || list.Data[2].Namespace == "" {
		t.Fatalf("list after creates %+v", list.Data)
	}
	var one struct{ Namespace, NamespaceShowName, NamespaceDesc string }
	decodeJSON(t, h.mustDo(t, "GET", p+"?show=all&namespaceId=dev", ""), &one)
	if one.Namespace != "dev" || one.NamespaceShowName != "Dev" || one.NamespaceDesc != "development" {
		t.Fatalf("detail %+v", one)
	}
	if w := h.do(t, "GET", p+"?show=all&namespaceId=nope", ""); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not exist") {
		t.Fatalf("detail of unknown: %d %s", w.Code, w.Body.String())
	}
	if got := h.mustDo(t, "GET", p+"?checkNamespaceIdExist=true&customNamespaceId=dev", "").Body.String(); got != "true" {
		t.Fatalf("check existing: %s", got)
	}
	if got := h.mustDo(t, "GET", p+"?checkNamespaceIdExist=true&customNamespaceId=nope", "").Body.String(); got != "false" {
		t.Fatalf("check unknown: %s", got)
	}
	h.mustDo(t, "PUT", p, "namespace=dev&namespaceShowName=Development&namespaceDesc=d2")
	decodeJSON(t, h.mustDo(t, "GET", p+"?show=all&namespaceId=dev&linearizable=true", ""), &one)
	if one.NamespaceShowName != "Development" || one.NamespaceDesc != "d2" {
		t.Fatalf("after update %+v", one)
	}
	if w := h.do(t, "PUT", p, "namespace=nope&namespaceShowName=X"); w.Code != http.StatusNotFound {
		t.Fatalf("update of unknown: %d %s", w.Code, w.Body.String())
	}
	if w := h.do(t, "DELETE", p+"?namespaceId=public", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("delete of public: %d", w.Code)
	}
	h.mustDo(t, "DELETE", p+"?namespaceId=dev", "")
	h.mustDo(t, "DELETE", p+"?namespaceId=dev", "") // idempotent, as Nacos
	w = h.do(t, "POST", "/nacos/v1/ns/instance", "namespaceId=dev&serviceName=s&ip=10.0.0.2&port=80")
	if w.Code != http.StatusBadRequest {
		t.Fatalf("register after delete: %d %s", w.Code, w.Body.String())
	}
	// Removals in a deleted namespace still work.
	h.mustDo(t, "DELETE", "/nacos/v1/ns/instance?namespaceId=dev&serviceName=s&ip=10.0.0.1&port=80", "")
}
