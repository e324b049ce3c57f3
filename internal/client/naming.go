package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// API paths, relative to the server root.
const (
	pathInstance     = contextPath + "/v1/ns/instance"
	pathInstanceList = contextPath + "/v1/ns/instance/list"
	pathBeat         = contextPath + "/v1/ns/instance/beat"
	pathServiceList  = contextPath + "/v1/ns/service/list"
	pathMetrics      = contextPath + "/v1/ns/operator/metrics"
	pathClusterNodes = contextPath + "/v1/core/cluster/nodes"
	pathReadyz       = "/readyz"
)

// RegisterInstance registers (or, for the same ip, port and cluster,
// replaces) inst with POST /nacos/v1/ns/instance. Every field except
// InstanceID is sent as it is, because the zero values are meaningful:
// set Weight (1 is the Nacos default; 0 means "never selected"), Healthy,
// Enabled and Ephemeral explicitly.
func (c *Client) RegisterInstance(ctx context.Context, inst Instance) error {
	if inst.ServiceName == "" || inst.IP == "" {
		return fmt.Errorf("register: service name and ip are required")
	}
	v := c.naming()
	grouped := GroupedName("", inst.ServiceName)
	v.Set("serviceName", grouped)
	v.Set("groupName", grouped[:strings.Index(grouped, GroupSeparator)])
	v.Set("ip", inst.IP)
	v.Set("port", strconv.Itoa(inst.Port))
	v.Set("weight", strconv.FormatFloat(inst.Weight, 'f', -1, 64))
	v.Set("healthy", strconv.FormatBool(inst.Healthy))
	v.Set("enabled", strconv.FormatBool(inst.Enabled))
	v.Set("ephemeral", strconv.FormatBool(inst.Ephemeral))
	if inst.ClusterName != "" {
		v.Set("clusterName", inst.ClusterName)
	}
	if len(inst.Metadata) > 0 {
		md, err := json.Marshal(inst.Metadata)
		if err != nil {
			return fmt.Errorf("register: metadata: %w", err)
		}
		v.Set("metadata", string(md))
	}
	_, _, err := c.call(ctx, http.MethodPost, pathInstance, v)
	return err
}

// DeregisterInstance removes one instance with DELETE /nacos/v1/ns/instance.
// An empty group means DefaultGroup and an empty cluster the server's
// default ("DEFAULT"). ephemeral must match how the instance was
// registered. Removing an unknown instance succeeds, as in Nacos.
func (c *Client) DeregisterInstance(ctx context.Context, service, group, ip string, port int, cluster string, ephemeral bool) error {
	if service == "" || ip == "" {
		return fmt.Errorf("deregister: service name and ip are required")
	}
	v := c.naming()
	v.Set("serviceName", GroupedName(group, service))
	v.Set("ip", ip)
	v.Set("port", strconv.Itoa(port))
	if cluster != "" {
		v.Set("clusterName", cluster)
	}
	v.Set("ephemeral", strconv.FormatBool(ephemeral))
	_, _, err := c.call(ctx, http.MethodDelete, pathInstance, v)
	return err
}

// ListInstances returns a service's enabled instances with GET
// /nacos/v1/ns/instance/list. clusters restricts the answer to those
// clusters (none: all); healthyOnly drops unhealthy instances server-side.
// An unknown service is not an error: it has no hosts.
func (c *Client) ListInstances(ctx context.Context, service, group string, clusters []string, healthyOnly bool) (*ServiceInfo, error) {
	if service == "" {
		return nil, fmt.Errorf("list instances: service name is required")
	}
	v := c.naming()
	v.Set("serviceName", GroupedName(group, service))
	v.Set("clusters", strings.Join(clusters, ","))
	v.Set("healthyOnly", strconv.FormatBool(healthyOnly))
	body, srv, err := c.call(ctx, http.MethodGet, pathInstanceList, v)
	if err != nil {
		return nil, err
	}
	var info ServiceInfo
	if err := decodeJSON(body, &info); err != nil {
		return nil, fmt.Errorf("instance list from %s: %w", srv, err)
	}
	return &info, nil
}

// ListServices returns one page of a group's service names with GET
// /nacos/v1/ns/service/list. An empty group means DefaultGroup; pageNo is
// 1-based and defaults to 1, pageSize defaults to 100.
func (c *Client) ListServices(ctx context.Context, group string, pageNo, pageSize int) (*ServiceList, error) {
	if group == "" {
		group = DefaultGroup
	}
	if pageNo < 1 {
		pageNo = 1
	}
	if pageSize < 1 {
		pageSize = 100
	}
	v := c.naming()
	v.Set("groupName", group)
	v.Set("pageNo", strconv.Itoa(pageNo))
	v.Set("pageSize", strconv.Itoa(pageSize))
	body, srv, err := c.call(ctx, http.MethodGet, pathServiceList, v)
	if err != nil {
		return nil, err
	}
	var list ServiceList
	if err := decodeJSON(body, &list); err != nil {
		return nil, fmt.Errorf("service list from %s: %w", srv, err)
	}
	return &list, nil
}

// Beat sends one heartbeat for an ephemeral instance with PUT
// /nacos/v1/ns/instance/beat, the way the Nacos SDKs do: the beat JSON in
// the "beat" parameter. The server registers the instance from the beat if
// it does not know it. Callers beat again after
// BeatResult.ClientBeatInterval milliseconds.
func (c *Client) Beat(ctx context.Context, beat BeatInfo) (*BeatResult, error) {
	if beat.ServiceName == "" || beat.IP == "" {
		return nil, fmt.Errorf("beat: service name and ip are required")
	}
	beat.ServiceName = GroupedName("", beat.ServiceName)
	if beat.Metadata == nil {
		beat.Metadata = map[string]string{} // the SDKs send {}, never null
	}
	b, err := json.Marshal(beat)
	if err != nil {
		return nil, fmt.Errorf("beat: %w", err)
	}
	v := c.naming()
	v.Set("serviceName", beat.ServiceName)
	v.Set("beat", string(b))
	body, srv, err := c.call(ctx, http.MethodPut, pathBeat, v)
	if err != nil {
		return nil, err
	}
	var res BeatResult
	if err := decodeJSON(body, &res); err != nil {
		return nil, fmt.Errorf("beat answer from %s: %w", srv, err)
	}
	return &res, nil
}

// ServerStatus returns the answer of GET
// /nacos/v1/ns/operator/metrics?onlyStatus=false from the one given server
// (host:port; it need not be in the Client's list), with no failover: it
// asks about that server, not the cluster. Expect "status" ("UP") and
// counters such as "serviceCount", "instanceCount" and "subscribeCount";
// numbers are json.Number. Servers differ in which fields they send.
func (c *Client) ServerStatus(ctx context.Context, server string) (map[string]any, error) {
	if err := checkServer(server); err != nil {
		return nil, err
	}
	v := url.Values{}
	v.Set("onlyStatus", "false")
	body, err := c.authed(ctx, server, http.MethodGet, pathMetrics, v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := decodeJSON(body, &m); err != nil {
		return nil, fmt.Errorf("metrics from %s: %w", server, err)
	}
	return m, nil
}

// ClusterNodes returns the cluster members as one server sees them, with
// GET /nacos/v1/core/cluster/nodes (with failover: any member can answer).
func (c *Client) ClusterNodes(ctx context.Context) ([]Node, error) {
	body, srv, err := c.call(ctx, http.MethodGet, pathClusterNodes, nil)
	if err != nil {
		return nil, err
	}
	var res nodesResult
	if err := decodeJSON(body, &res); err != nil {
		return nil, fmt.Errorf("cluster nodes from %s: %w", srv, err)
	}
	if res.Code != 0 && res.Code != http.StatusOK {
		return nil, &APIError{Status: res.Code, Message: message([]byte(res.Message), res.Code), Server: srv}
	}
	return res.Data, nil
}

// Readyz asks one server whether it is ready to serve (GET /readyz, no
// failover). It returns nil on 200, an *APIError carrying the server's
// reason otherwise, or the transport error.
func (c *Client) Readyz(ctx context.Context, server string) error {
	if err := checkServer(server); err != nil {
		return err
	}
	_, err := c.once(ctx, server, http.MethodGet, pathReadyz, nil)
	return err
}
