package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/sim"
)

// chart renders every chart from reports of both sweeps, with the values
// of the reports in them.
func TestChart(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, c := range []struct{ nodes, services int }{{3, 1000}, {4, 1000}, {3, 200}} {
		cfg := sim.DefaultConfig()
		cfg.Nodes, cfg.Services, cfg.PerService = c.nodes, c.services, 10
		cfg.Calm, cfg.Faults, cfg.Settle, cfg.Partition = 2*time.Second, 4*time.Second, 12*time.Second, 2*time.Second
		r, err := sim.Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+string(rune('a'+len(files)))+".json")
		if err := os.WriteFile(f, r.JSON(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out := filepath.Join(dir, "img")
	if err := chartCmd(append([]string{"--out", out}, files...)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"propagation.svg", "bytes-per-change.svg", "verify-bytes.svg", "verify-cpu.svg", "snapshot.svg", "moved-share.svg"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("</svg>")) {
			t.Fatalf("%s is not an SVG document", name)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "bytes-per-change.svg"))
	if !bytes.Contains(b, []byte("3 nodes")) || !bytes.Contains(b, []byte("4 nodes")) {
		t.Fatalf("bytes-per-change.svg lacks the node-sweep categories:\n%s", b)
	}
	if err := chartCmd([]string{"--out", out, filepath.Join(dir, "missing.json")}); err == nil {
		t.Fatal("a missing report was not an error")
	}
}
