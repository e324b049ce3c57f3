package telemetry

import (
	"testing"
)

// TestRegistryExportsLiveHeap: the Go collector keeps its default series
// and adds the live heap that distrobench's memory figures read.
func TestRegistryExportsLiveHeap(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_memstats_next_gc_bytes", "go_memstats_stack_inuse_bytes",
		"go_gc_gogc_percent", "go_goroutines", "process_resident_memory_bytes"} {
		if !have[name] {
			t.Errorf("no %s", name)
		}
	}
}
