package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DefaultGroup is the Nacos group of a service registered without one.
const DefaultGroup = "DEFAULT_GROUP"

// DefaultCluster is the cluster Nacos puts an instance in when it is
// registered without one.
const DefaultCluster = "DEFAULT"

// GroupedName is the service name the v1 HTTP API and the SDK caches use:
// "group@@svc", with DefaultGroup for an empty group.
func GroupedName(group, svc string) string {
	if group == "" {
		group = DefaultGroup
	}
	return group + "@@" + svc
}

// InstanceKey is how the tests name an instance in a list:
// "ip:port#cluster", with DefaultCluster for an empty cluster.
func InstanceKey(ip string, port uint64, cluster string) string {
	if cluster == "" {
		cluster = DefaultCluster
	}
	return fmt.Sprintf("%s:%d#%s", ip, port, cluster)
}

// RandHex returns 3 random bytes as 6 hex digits.
func RandHex() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Slug turns a test name into a lower-case name part: "/", "_" and " "
// become "-".
func Slug(s string) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(s))
}

// UniqueName joins parts with "-" and appends RandHex, for service names
// and labels unique to one run, e.g. UniqueName("v1", Slug(t.Name()), "svc").
func UniqueName(parts ...string) string {
	return strings.Join(append(parts, RandHex()), "-")
}

// Sorted returns a sorted copy of s.
func Sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// SameSet reports whether a and b hold the same strings the same number of
// times, in any order.
func SameSet(a, b []string) bool {
	return slices.Equal(Sorted(a), Sorted(b))
}

// sortedPairs renders m as "k=v" strings, sorted by key.
func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}
