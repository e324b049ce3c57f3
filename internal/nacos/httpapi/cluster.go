package httpapi

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// clusterOp builds PUT /v1/ns/cluster (Nacos ClusterController.update):
// serviceName, clusterName, checkPort, useInstancePort4Check and
// healthChecker (JSON) are required, metadata is optional. The whole
// request is validated before anything is written.
func (a *API) clusterOp(_ *http.Request, p *params) (*registry.Op, error) {
	key, err := a.serviceKey(p)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"clusterName", "checkPort", "useInstancePort4Check", "healthChecker"} {
		if strings.TrimSpace(p.Get(name)) == "" {
			return nil, registry.Errorf(http.StatusBadRequest, "Param '%s' is required.", name)
		}
	}
	op := &registry.Op{Kind: registry.OpUpdateCluster, Key: key}
	if err := a.cfg.Limits.ValidateName("clusterName", strings.TrimSpace(p.Get("clusterName"))); err != nil {
		return nil, err
	}
	op.ClusterName = strings.TrimSpace(p.Get("clusterName"))
	c := &op.Cluster
	port, err := strconv.Atoi(strings.TrimSpace(p.Get("checkPort")))
	if err != nil {
		return nil, registry.Errorf(http.StatusBadRequest, "checkPort %q is not an integer", p.Get("checkPort"))
	}
	c.CheckPort = port
	switch strings.ToLower(strings.TrimSpace(p.Get("useInstancePort4Check"))) {
	case "true":
		c.UseInstancePort = true
	case "false":
	default:
		return nil, registry.Errorf(http.StatusBadRequest, "useInstancePort4Check %q is not true or false", p.Get("useInstancePort4Check"))
	}
	if c.HealthChecker, err = model.ParseHealthChecker(p.Get("healthChecker")); err != nil {
		return nil, err
	}
	if c.Metadata, err = a.cfg.Limits.ParseMetadata(p.Get("metadata")); err != nil {
		return nil, err
	}
	return op, a.cfg.Limits.ValidateClusterMeta(c)
}

// clusterJSON is one cluster of a service detail: Nacos's name,
// healthChecker and metadata, plus the check port fields under the names
// of Nacos's Cluster class (defaultCheckPort, useIPPort4Check).
type clusterJSON struct {
	Name             string              `json:"name"`
	HealthChecker    model.HealthChecker `json:"healthChecker"`
	Metadata         map[string]string   `json:"metadata"`
	DefaultCheckPort int                 `json:"defaultCheckPort"`
	UseIPPort4Check  bool                `json:"useIPPort4Check"`
}

// clusters lists the clusters of a service, those with instances and those
// with settings, sorted by name, each with its effective settings.
func (a *API) clusters(v *store.View) []clusterJSON {
	names := map[string]bool{}
	for _, in := range v.Instances {
		names[in.Cluster] = true
	}
	if v.Meta != nil {
		for name := range v.Meta.Clusters {
			names[name] = true
		}
	}
	out := make([]clusterJSON, 0, len(names))
	for name := range names {
		c := v.Meta.Cluster(name, a.cfg.HealthChecks.DefaultType)
		md := c.Metadata
		if md == nil {
			md = map[string]string{}
		}
		out = append(out, clusterJSON{Name: name, HealthChecker: c.HealthChecker, Metadata: md,
			DefaultCheckPort: c.CheckPort, UseIPPort4Check: c.UseInstancePort})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
