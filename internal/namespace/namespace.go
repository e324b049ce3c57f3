package namespace

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

// Table is the CP table namespaces live in.
const Table = "namespaces"

// Limits of Nacos's console.
const (
	MaxIDLen   = 128
	MaxNameLen = 256
	MaxDescLen = 1024
)

// idPattern is what Nacos accepts as a custom namespace id.
var idPattern = regexp.MustCompile(`^[\w-]+$`)

// Namespace is one tenant.
type Namespace struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Desc      string `json:"desc,omitempty"`
	CreatedMs int64  `json:"createdMs,omitempty"`
}

// Default is the always-present default namespace.
var Default = Namespace{ID: model.DefaultNamespace, Name: "public", Desc: "Public Namespace"}

// IsDefault reports whether id names the default namespace.
func IsDefault(id string) bool {
	id = strings.TrimSpace(id)
	return id == "" || id == model.DefaultNamespace
}

// Registry is the namespaces of the cluster.
type Registry struct {
	KV consistency.KV
}

// List returns the default namespace followed by the custom ones, by id.
func (r *Registry) List() []Namespace {
	out := []Namespace{Default}
	for _, e := range r.KV.List(Table) {
		var ns Namespace
		if json.Unmarshal(e.Value, &ns) == nil {
			out = append(out, ns)
		}
	}
	return out
}

// Get returns a namespace by id.
func (r *Registry) Get(id string) (Namespace, bool) {
	if IsDefault(id) {
		return Default, true
	}
	b, ok := r.KV.Get(Table, id)
	if !ok {
		return Namespace{}, false
	}
	var ns Namespace
	if err := json.Unmarshal(b, &ns); err != nil {
		return Namespace{}, false
	}
	return ns, true
}

// Exists reports whether writes may use namespace id.
func (r *Registry) Exists(id string) bool {
	if IsDefault(id) {
		return true
	}
	_, ok := r.KV.Get(Table, id)
	return ok
}

func badRequest(format string, args ...any) error {
	return registry.Errorf(http.StatusBadRequest, format, args...)
}

// NotFound is the error for an unknown namespace id (HTTP 404, as Nacos).
func NotFound(id string) error {
	return registry.Errorf(http.StatusNotFound, "namespaceId [ %s ] not exist", id)
}

func validate(ns *Namespace) error {
	switch {
	case len(ns.ID) > MaxIDLen || !idPattern.MatchString(ns.ID):
		return badRequest("illegal namespace: namespaceId %q must be 1-%d letters, digits, _ or -", ns.ID, MaxIDLen)
	case strings.TrimSpace(ns.Name) == "":
		return badRequest("Param 'namespaceName' is required.")
	case len(ns.Name) > MaxNameLen || strings.ContainsAny(ns.Name, "@#$%^&*"):
		return badRequest("illegal namespace: namespaceName %q is too long or contains @#$%%^&*", ns.Name)
	case len(ns.Desc) > MaxDescLen:
		return badRequest("illegal namespace: namespaceDesc is longer than %d bytes", MaxDescLen)
	}
	return nil
}

// Create adds a namespace; a blank id gets a random UUID, as in Nacos.
// It returns the id.
func (r *Registry) Create(ctx context.Context, ns Namespace) (string, error) {
	ns.ID = strings.TrimSpace(ns.ID)
	if ns.ID == "" {
		ns.ID = uuid()
	}
	if IsDefault(ns.ID) {
		return "", badRequest("namespaceId [%s] already exist.", ns.ID)
	}
	if err := validate(&ns); err != nil {
		return "", err
	}
	ns.CreatedMs = time.Now().UnixMilli()
	b, _ := json.Marshal(ns)
	err := r.KV.Write(ctx, consistency.KVWrite{Table: Table, Key: ns.ID, Value: b, Mode: consistency.KVCreate})
	if errors.Is(err, consistency.ErrExists) {
		return "", badRequest("namespaceId [%s] already exist.", ns.ID)
	}
	return ns.ID, err
}

// Update renames a namespace or changes its description.
func (r *Registry) Update(ctx context.Context, ns Namespace) error {
	if IsDefault(ns.ID) {
		return badRequest("the default namespace cannot be changed")
	}
	cur, ok := r.Get(ns.ID)
	if !ok {
		return NotFound(ns.ID)
	}
	ns.CreatedMs = cur.CreatedMs
	if err := validate(&ns); err != nil {
		return err
	}
	b, _ := json.Marshal(ns)
	err := r.KV.Write(ctx, consistency.KVWrite{Table: Table, Key: ns.ID, Value: b, Mode: consistency.KVUpdate})
	if errors.Is(err, consistency.ErrNotFound) {
		return NotFound(ns.ID)
	}
	return err
}

// Delete removes a namespace; deleting an unknown one succeeds (as Nacos).
func (r *Registry) Delete(ctx context.Context, id string) error {
	if IsDefault(id) {
		return badRequest("the default namespace cannot be deleted")
	}
	if len(id) > MaxIDLen || !idPattern.MatchString(id) {
		return badRequest("illegal namespace: namespaceId %q", id)
	}
	return r.KV.Write(ctx, consistency.KVWrite{Table: Table, Key: id, Mode: consistency.KVDeleteIfPresent})
}

// Check is the naming writes' namespace validation: an error for a
// namespace that was never created.
func (r *Registry) Check(id string) error {
	if r.Exists(id) {
		return nil
	}
	return badRequest("Namespace '%s' does not exist. Please create the namespace first.", id)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
