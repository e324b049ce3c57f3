package cluster

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// uniq returns a service name unique to this run.
func uniq(base string) string { return harness.UniqueName("cl", base) }

// inst is a healthy, enabled, ephemeral instance of weight 1, with metadata.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	p := harness.V1RegisterParam(svc, ip, port, cluster)
	p.Metadata = map[string]string{"owner": "compat-cluster"}
	return p
}

// deregister deregisters an instance the client registered, at a moment
// when none of its beats is in flight and the next one is at least 2 s
// away (beats come every 5 s): a beat that reached the server after the
// DELETE would register the instance again, as Nacos does.
func deregister(t *testing.T, c *harness.V1Client, p vo.RegisterInstanceParam) {
	t.Helper()
	harness.Eventually(t, 12*time.Second, 10*time.Millisecond, func() error {
		answered, inFlight, last := c.Wire.BeatState(p.Ip, p.Port)
		switch {
		case answered == 0:
			return fmt.Errorf("%s: no answered beat for %s:%d yet", c.Name, p.Ip, p.Port)
		case inFlight:
			return fmt.Errorf("%s: a beat for %s:%d is in flight", c.Name, p.Ip, p.Port)
		case time.Since(last) > 3*time.Second:
			return fmt.Errorf("%s: next beat for %s:%d is due soon (last at %s)", c.Name, p.Ip, p.Port, last.Format("15:04:05.000"))
		}
		return nil
	})
	ok, err := c.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: p.ServiceName, Ip: p.Ip, Port: p.Port, Cluster: p.ClusterName, Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("%s: DeregisterInstance(%s %s) = %v, %v", c.Name, p.ServiceName, harness.V1ParamKey(p), ok, err)
	}
}

// listAll GETs instance/list for every service from every node, in
// parallel: result[node index][service].
func listAll(nodes []*harness.Node, services []string) ([]map[string]*harness.V1Service, error) {
	out := make([]map[string]*harness.V1Service, len(nodes))
	errs := make([]error, len(nodes)*len(services))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = map[string]*harness.V1Service{}
		for j, svc := range services {
			wg.Go(func() {
				s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
				if err != nil {
					errs[i*len(services)+j] = fmt.Errorf("%s: %w", n.Name, err)
					return
				}
				mu.Lock()
				out[i][svc] = s
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// expected is the set of instance keys that must be listed per service.
type expected map[string]map[string]bool

func (e expected) add(p vo.RegisterInstanceParam) {
	if e[p.ServiceName] == nil {
		e[p.ServiceName] = map[string]bool{}
	}
	e[p.ServiceName][harness.V1ParamKey(p)] = true
}

func (e expected) remove(p vo.RegisterInstanceParam) { delete(e[p.ServiceName], harness.V1ParamKey(p)) }

func (e expected) keys(svc string) []string {
	var out []string
	for k := range e[svc] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// converged checks that every node lists exactly the expected instances of
// every service, all healthy, none twice, and that all nodes answer
// identical host lists.
func converged(nodes []*harness.Node, services []string, want expected) error {
	ls, err := listAll(nodes, services)
	if err != nil {
		return err
	}
	var problems []string
	for _, svc := range services {
		ref := ""
		for i, n := range nodes {
			s := ls[i][svc]
			if d := s.Duplicates(); len(d) > 0 {
				problems = append(problems, fmt.Sprintf("%s lists %v more than once in %s", n.Name, d, svc))
			}
			if got, w := strings.Join(s.Keys(), " "), strings.Join(want.keys(svc), " "); got != w {
				problems = append(problems, fmt.Sprintf("%s lists %s = [%s], want [%s]", n.Name, svc, got, w))
			}
			for _, h := range s.Hosts {
				if !h.Healthy {
					problems = append(problems, fmt.Sprintf("%s lists %s in %s as unhealthy", n.Name, h.Key(), svc))
				}
			}
			if i == 0 {
				ref = s.Canon()
			} else if c := s.Canon(); c != ref {
				problems = append(problems, fmt.Sprintf("%s and %s differ on %s:\n  %s:\n    %s\n  %s:\n    %s",
					nodes[0].Name, n.Name, svc, nodes[0].Name, strings.ReplaceAll(ref, "\n", "\n    "), n.Name, strings.ReplaceAll(c, "\n", "\n    ")))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not converged:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

// newSubscriber collects subscribe callbacks, naming hosts ip:port#cluster.
func newSubscriber() *harness.V1Subscriber { return harness.NewSubscriber(harness.V1HostKey) }
