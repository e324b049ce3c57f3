package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/distro"
)

func small() Config {
	c := DefaultConfig()
	c.Nodes, c.Services, c.PerService = 4, 40, 5
	c.Calm, c.Faults, c.Settle = 5*time.Second, 12*time.Second, 16*time.Second
	c.Partition = 5 * time.Second
	return c
}

// The same Config gives byte-identical reports; another seed does not.
func TestDeterministic(t *testing.T) {
	cfg := small()
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Fatalf("two runs of one config differ:\n%s\n---\n%s", a.JSON(), b.JSON())
	}
	cfg.Seed++
	c, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.JSON(), c.JSON()) {
		t.Fatal("a different seed gave the same report: the seed is not used")
	}
}

// A run with loss, a partition, churn and a join keeps every invariant it
// checks, and its figures are in the expected ranges.
func TestInvariantsAtScale(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Services, cfg.PerService = 10, 400, 4
	cfg.Calm, cfg.Faults, cfg.Settle = 12*time.Second, 24*time.Second, 20*time.Second
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) > 0 {
		t.Fatalf("violations: %q", r.Violations)
	}
	if got := strings.Join(r.Checked, ","); got != "I1,I2,I3,I5,I6,I8" {
		t.Fatalf("checked %s", got)
	}
	calm := r.Propagation["calm"]
	if calm == nil || calm.Changes < 300 {
		t.Fatalf("calm changes %+v", calm)
	}
	// A calm change reaches every node after the sync delay plus one hop.
	if calm.P99 < 20 || calm.P99 > 100 {
		t.Errorf("calm p99 %.1f ms, want between the 20 ms sync delay and 100 ms", calm.P99)
	}
	if f := r.Propagation["faults"]; f == nil || f.P99 <= calm.P99 {
		t.Errorf("fault-phase propagation %+v is not slower than calm", f)
	}
	// Two loads: the restarted node and the joining one, each with every
	// instance still registered (about half of the changed ones are deregistered).
	if len(r.Loads) != 2 || r.Loads[1].Records < int64(r.Instances)/2 {
		t.Fatalf("loads %+v", r.Loads)
	}
	// Rendezvous hashing: a join moves about 1/(N+1) of the keys.
	last := r.Moves[len(r.Moves)-1]
	if last.Phase != "join" || last.Moved < 0.5*last.Expect || last.Moved > 1.5*last.Expect {
		t.Errorf("join move %+v", last)
	}
	if r.Verify.Rounds == 0 || r.Verify.BytesPerRoundPerNode <= 0 {
		t.Errorf("verify %+v", r.Verify)
	}
}

// The checker fails when the protocol cannot repair: without verification
// (periodic or rejoin rounds), writes made across the partition never reach
// the other side.
func TestCheckerCatchesDivergence(t *testing.T) {
	cfg := small()
	cfg.Churn = 0
	cfg.Engine = func(c *distro.Config) { c.VerifyInterval, c.NoRejoinRounds = time.Hour, true }
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(r.Violations, "\n")
	if !strings.Contains(joined, "I1:") || !strings.Contains(joined, "I6:") {
		t.Fatalf("no I1/I6 violation without verification; violations: %q", r.Violations)
	}
}
