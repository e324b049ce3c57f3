package model

import (
	"strings"
	"testing"
	"unsafe"
)

func TestIntern(t *testing.T) {
	body := "serviceName=demo&ip=10.0.0.1&cluster=c1"
	sub := body[strings.Index(body, "c1"):]
	a := Intern(sub)
	if a != "c1" || unsafe.StringData(a) == unsafe.StringData(sub) {
		t.Fatal("Intern returned the caller's memory")
	}
	if b := Intern(strings.Clone("c1")); unsafe.StringData(b) != unsafe.StringData(a) {
		t.Fatal("equal strings interned apart")
	}
	if Intern(DefaultCluster) != DefaultCluster || Intern("") != "" {
		t.Fatal("constants")
	}
	long := strings.Repeat("x", internMaxLen+1)
	if c := Intern(long); c != long || unsafe.StringData(c) == unsafe.StringData(long) {
		t.Fatal("long strings are copied")
	}
}

func TestOwnShares(t *testing.T) {
	mk := func(v string) *Instance {
		return &Instance{IP: strings.Clone("10.0.0.1"), Cluster: strings.Clone("c1"),
			Metadata: map[string]string{strings.Clone("version"): strings.Clone(v), "zone": "z1"}}
	}
	a, b, c := mk("1.0"), mk("1.0"), mk("2.0")
	a.Own()
	b.Own()
	c.Own()
	if unsafe.StringData(a.IP) != unsafe.StringData(b.IP) || unsafe.StringData(a.Cluster) != unsafe.StringData(b.Cluster) {
		t.Fatal("equal strings not shared")
	}
	if !sameMapPtr(a.Metadata, b.Metadata) {
		t.Fatal("equal metadata not shared")
	}
	if sameMapPtr(a.Metadata, c.Metadata) || c.Metadata["version"] != "2.0" {
		t.Fatal("different metadata shared")
	}
	e := &Instance{Metadata: map[string]string{}}
	e.Own()
	if e.Metadata != nil {
		t.Fatal("empty metadata kept as a map")
	}
}

func sameMapPtr(a, b map[string]string) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}
