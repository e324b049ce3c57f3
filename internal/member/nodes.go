package member

import (
	"encoding/json"
	"slices"
	"strings"
)

// nacosNode is one element of the Nacos cluster nodes reply, in the field
// order Nacos's Member serialises to.
type nacosNode struct {
	IP            string          `json:"ip"`
	Port          int             `json:"port"`
	State         State           `json:"state"`
	ExtendInfo    nacosExtendInfo `json:"extendInfo"`
	Address       string          `json:"address"`
	FailAccessCnt int             `json:"failAccessCnt"`
	Abilities     struct{}        `json:"abilities"`
}

type nacosExtendInfo struct {
	LastRefreshTime int64  `json:"lastRefreshTime,omitempty"` // Unix ms; absent until contact, as in Nacos
	LastError       string `json:"lastError,omitempty"`
}

type nacosNodesReply struct {
	Code    int         `json:"code"`
	Message *string     `json:"message"`
	Data    []nacosNode `json:"data"`
}

// NodesJSON renders GET /nacos/v1/core/cluster/nodes in the Nacos shape
// ({"code":200,"message":null,"data":[member...]}), so that the Nacos console
// and tools that read it work against distro. Members are sorted by address.
// A non-empty keyword keeps the members whose address starts with it, which is
// what Nacos's NacosClusterController does (equal or prefix).
func NodesJSON(members []MemberStatus, keyword string) ([]byte, error) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b MemberStatus) int { return strings.Compare(a.Address, b.Address) })
	keyword = strings.TrimSpace(keyword)
	reply := nacosNodesReply{Code: 200, Data: make([]nacosNode, 0, len(ms))}
	for _, m := range ms {
		if keyword != "" && !strings.HasPrefix(m.Address, keyword) {
			continue
		}
		host, port, err := splitAddress(m.Address)
		if err != nil {
			return nil, err
		}
		n := nacosNode{
			IP:            host,
			Port:          port,
			State:         m.State,
			Address:       m.Address,
			FailAccessCnt: m.FailCount,
			ExtendInfo:    nacosExtendInfo{LastError: m.LastError},
		}
		if !m.LastContact.IsZero() {
			n.ExtendInfo.LastRefreshTime = m.LastContact.UnixMilli()
		}
		reply.Data = append(reply.Data, n)
	}
	return json.Marshal(reply)
}
