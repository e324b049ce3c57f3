package v2

import (
	"testing"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// TestPersistentInstance: the SDK registers a persistent instance
// (Ephemeral false, which nacos-sdk-go v2 sends over the HTTP API), it is
// listed everywhere, outlives the client and a restart of every node (it is
// on Raft, in the data dir), and a persistent deregister removes it.
func TestPersistentInstance(t *testing.T) {
	eachOwnTopology(t, func(t *testing.T, tp topo) {
		prov := newClient(t, "prov", tp.writer)
		svc := uniq(t, "db")
		p := inst(svc, "10.48.0.1", 3306, "")
		p.Ephemeral = false
		prov.MustRegister(t, p)
		eventuallyListed(t, tp.all, svc, pkey(p))
		prov.CloseClient()
		for _, n := range tp.all {
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range tp.all {
			if err := n.Start(); err != nil {
				t.Fatalf("restart %s: %v", n.Name, err)
			}
		}
		eventuallyListed(t, tp.all, svc, pkey(p))
		again := newClient(t, "again", tp.reader)
		ok, err := again.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: p.ServiceName, Ip: p.Ip, Port: p.Port, Ephemeral: false})
		if err != nil || !ok {
			t.Fatalf("persistent DeregisterInstance = %v, %v", ok, err)
		}
		eventuallyListed(t, tp.all, svc)
	})
}
