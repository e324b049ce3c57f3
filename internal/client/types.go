package client

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Nacos naming defaults that callers need to build names. They are part of
// the wire contract, so they are fixed here rather than configurable.
const (
	// DefaultGroup is the group of a service name given without one.
	DefaultGroup = "DEFAULT_GROUP"
	// GroupSeparator joins group and service: "group@@service".
	GroupSeparator = "@@"
)

// GroupedName returns the Nacos grouped form "group@@service" that the v1
// API expects in serviceName (both Nacos SDKs always send it). An empty
// group means DefaultGroup. A service that already contains "@@" is
// returned unchanged: an explicit grouped name wins over group.
func GroupedName(group, service string) string {
	if strings.Contains(service, GroupSeparator) {
		return service
	}
	if group == "" {
		group = DefaultGroup
	}
	return group + GroupSeparator + service
}

// Instance is one endpoint of a service, as the v1 API lists it in
// ServiceInfo.Hosts and as RegisterInstance sends it.
type Instance struct {
	// InstanceID is server-assigned ("ip#port#cluster#group@@service" by
	// default); RegisterInstance does not send it.
	InstanceID string  `json:"instanceId"`
	IP         string  `json:"ip"`
	Port       int     `json:"port"`
	Weight     float64 `json:"weight"`
	Healthy    bool    `json:"healthy"`
	Enabled    bool    `json:"enabled"`
	Ephemeral  bool    `json:"ephemeral"`
	// ClusterName is the instance's cluster; empty means "DEFAULT".
	ClusterName string `json:"clusterName"`
	// ServiceName is the grouped name ("group@@service") in answers. On
	// register a bare name is grouped with DefaultGroup (see GroupedName).
	ServiceName string            `json:"serviceName"`
	Metadata    map[string]string `json:"metadata"`
}

// ServiceInfo is the answer of GET /nacos/v1/ns/instance/list: one
// service's instances in the requested clusters.
type ServiceInfo struct {
	// Name is the grouped name echoed from the request.
	Name      string `json:"name"`
	GroupName string `json:"groupName"`
	// Clusters echoes the requested clusters string ("" for all).
	Clusters string `json:"clusters"`
	// CacheMillis is how long (ms) the server suggests caching this answer.
	CacheMillis int64 `json:"cacheMillis"`
	// LastRefTime is the server's ms timestamp of this view; it increases
	// with every change of the service.
	LastRefTime              int64      `json:"lastRefTime"`
	Checksum                 string     `json:"checksum"`
	AllIPs                   bool       `json:"allIPs"`
	ReachProtectionThreshold bool       `json:"reachProtectionThreshold"`
	Valid                    bool       `json:"valid"`
	Hosts                    []Instance `json:"hosts"`
}

// ServiceList is the answer of GET /nacos/v1/ns/service/list.
type ServiceList struct {
	// Count is the number of services in the group, over all pages.
	Count int `json:"count"`
	// Doms are the bare service names (group stripped) on this page.
	Doms []string `json:"doms"`
}

// BeatInfo is the "beat" JSON a client heartbeat carries. The server
// refreshes the instance's heartbeat and, if it does not know the instance,
// registers it from these fields.
type BeatInfo struct {
	IP   string `json:"ip"`
	Port int    `json:"port"`
	// ServiceName may be bare or grouped; Beat sends it grouped.
	ServiceName string            `json:"serviceName"`
	Cluster     string            `json:"cluster"`
	Weight      float64           `json:"weight"`
	Metadata    map[string]string `json:"metadata"`
	Scheduled   bool              `json:"scheduled"`
}

// BeatResult is the server's answer to a beat.
type BeatResult struct {
	// ClientBeatInterval is the interval (ms) the server wants beats at.
	ClientBeatInterval int64 `json:"clientBeatInterval"`
	// Code is 10200 when the instance was known or registered, 20404 when
	// the server does not know it (only for beats without a body).
	Code             int  `json:"code"`
	LightBeatEnabled bool `json:"lightBeatEnabled"`
}

// Beat result codes from BeatResult.Code.
const (
	BeatOK       = 10200
	BeatNotFound = 20404
)

// Node is one cluster member as GET /nacos/v1/core/cluster/nodes lists it.
type Node struct {
	IP   string `json:"ip"`
	Port int    `json:"port"`
	// State is "UP", "SUSPICIOUS", "DOWN", "STARTING" or "ISOLATION".
	State string `json:"state"`
	// Address is "ip:port", the member's identity.
	Address string `json:"address"`
	// ExtendInfo holds free-form member data; numbers are json.Number.
	// lastRefreshTime (ms) is the member's last successful contact.
	ExtendInfo map[string]any `json:"extendInfo"`
	// FailAccessCnt counts consecutive failed probes of the member.
	FailAccessCnt int `json:"failAccessCnt"`
}

// LastRefreshTime returns extendInfo.lastRefreshTime as a time, or the zero
// time when the server did not send a usable one.
func (n Node) LastRefreshTime() time.Time {
	var ms int64
	switch v := n.ExtendInfo["lastRefreshTime"].(type) {
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			f, ferr := v.Float64()
			if ferr != nil {
				return time.Time{}
			}
			i = int64(f)
		}
		ms = i
	case float64:
		ms = int64(v)
	case string:
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}
		}
		ms = i
	default:
		return time.Time{}
	}
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// nodesResult is the RestResult envelope of the cluster nodes answer.
type nodesResult struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    []Node `json:"data"`
}
