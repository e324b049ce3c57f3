package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses: fields are counted
	// after the last ')'.
	line := "4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 8 0 12345 1000000 2000 18446744073709551615\n"
	c, err := ParseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if c.User != 2500*time.Millisecond || c.System != 750*time.Millisecond || c.Total() != 3250*time.Millisecond {
		t.Fatalf("got %+v", c)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S 1 2 3 4 5 6 7 8 9 a b c"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	text := "Name:\tdistrod\nVmPeak:\t  900000 kB\nVmHWM:\t   50000 kB\nVmRSS:\t   42000 kB\nThreads:\t7\n"
	m, err := ParseProcStatus(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 42000*1024 || m.HWM != 50000*1024 || m.Threads != 7 {
		t.Fatalf("got %+v", m)
	}
	if _, err := ParseProcStatus(strings.NewReader("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Error("kernel thread without Vm lines: want error")
	}
	if _, err := ParseProcStatus(strings.NewReader("VmRSS:\tlots kB\nVmHWM:\t1 kB\n")); err == nil {
		t.Error("bad number: want error")
	}
}

func TestParseHostStat(t *testing.T) {
	text := "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
	h, err := ParseHostStat([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq+steal = 161 ticks; idle = idle+iowait = 1020.
	if h.Busy != 1610*time.Millisecond || h.Idle != 10200*time.Millisecond {
		t.Fatalf("got %+v", h)
	}
	if _, err := ParseHostStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("want error without a cpu line")
	}
}

func TestReadProcFromRoot(t *testing.T) {
	dir := t.TempDir()
	old := procRoot
	procRoot = dir
	t.Cleanup(func() { procRoot = old })
	if err := os.MkdirAll(filepath.Join(dir, "77"), 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "77", "stat"), []byte("77 (x) R 1 1 1 0 -1 0 0 0 0 0 100 100 0 0 20 0 1 0 1 1 1"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "77", "status"), []byte("VmHWM:\t2 kB\nVmRSS:\t1 kB\nThreads:\t3\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte("cpu 1 0 1 8 0 0 0 0\n"), 0o644))
	c, err := ReadProcCPU("77")
	must(err)
	if c.Total() != 2*time.Second {
		t.Errorf("cpu %v", c.Total())
	}
	m, err := ReadProcMem("77")
	must(err)
	if m.RSS != 1024 || m.HWM != 2048 || m.Threads != 3 {
		t.Errorf("mem %+v", m)
	}
	h, err := ReadHostCPU()
	must(err)
	if h.Busy != 20*time.Millisecond || h.Idle != 80*time.Millisecond {
		t.Errorf("host %+v", h)
	}
	if _, err := ReadProcCPU("78"); err == nil {
		t.Error("missing pid: want error")
	}
}

func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := ReadProcCPU("self"); err != nil {
		t.Fatal(err)
	}
	m, err := ReadProcMem("self")
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS || m.Threads < 1 {
		t.Fatalf("self %+v", m)
	}
}
