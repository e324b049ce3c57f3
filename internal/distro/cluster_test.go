package distro_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/distro/distrotest"
)

func newCluster(t *testing.T, n int, opts distrotest.Options) *distrotest.Cluster {
	t.Helper()
	if opts.Log == nil {
		opts.Log = t.Output()
	}
	c := distrotest.NewCluster(t, n, opts)
	c.WaitReady(10 * time.Second)
	return c
}

func TestRegisterReplicatesToEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		for i := 0; i < 30; i++ {
			via := distrotest.Addr(i%3 + 1)
			if err := c.Register(via, fmt.Sprintf("svc-%d", i%7), distrotest.Instance(fmt.Sprintf("10.1.0.%d", i), 8080)); err != nil {
				t.Fatal(err)
			}
		}
		distrotest.Eventually(t, 2*time.Second, 10*time.Millisecond, func() error {
			if err := c.Converged(); err != nil {
				return err
			}
			if got := len(c.Instances(distrotest.Addr(2), "svc-0")); got != 5 {
				return fmt.Errorf("svc-0 has %d instances on node 2, want 5", got)
			}
			return nil
		})
	})
}
