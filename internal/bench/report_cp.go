package bench

// SeriesPersistent is the series tag of closed-loop v1 register runs with
// persistent instances (--ephemeral unset): on distrod each one is a Raft
// commit of the CP side, while the headline's write scenarios use
// ephemeral instances (the Distro path).
const SeriesPersistent = "persistent"

// writePersistent writes the section on persistent writes of one node.
func (c *Collection) writePersistent(p func(string, ...any)) {
	d, ce := c.Find("register", "distrod", SeriesPersistent), c.Find("register", "ceiling", SeriesPersistent)
	if d == nil {
		return
	}
	p("## Persistent writes on one node (Raft)\n\n")
	p("The headline's write scenarios register ephemeral instances, which distrod keeps with Distro in memory (Nacos's default for\n")
	p("a registration). A **persistent** instance (`ephemeral=false`) is a write of the CP side instead: distrod answers it once Raft has\n")
	p("appended it to the log on disk (one fsync per batch of concurrent proposals) and applied it, also on a single node. This is the\n")
	p("`register` scenario with persistent instances against the same ceiling; `scripts/bench/raft.sh` measures three nodes (the\n")
	p("`Persistent data (Raft)` section of the full report).\n\n")
	p("%s", ceilingTableHeader)
	ceilingRow(p, "register (persistent)", d, ce)
	p("\n")
}
