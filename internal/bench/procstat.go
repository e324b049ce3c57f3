package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat. It is 100 on every Linux architecture Go supports.
const ClockTicks = 100

// ProcCPU is a process's CPU time so far.
type ProcCPU struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c ProcCPU) Total() time.Duration { return c.User + c.System }

// ProcMem is a process's memory from /proc/PID/status.
type ProcMem struct {
	// RSS is VmRSS and HWM is VmHWM (peak RSS), in bytes.
	RSS, HWM int64
	// Threads is the thread count.
	Threads int
}

// procRoot is where /proc lives; tests point it elsewhere.
var procRoot = "/proc"

// ReadProcCPU reads utime and stime of pid ("self" works too).
func ReadProcCPU(pid string) (ProcCPU, error) {
	b, err := os.ReadFile(procRoot + "/" + pid + "/stat")
	if err != nil {
		return ProcCPU{}, err
	}
	return ParseProcStat(b)
}

// ParseProcStat extracts utime and stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name (field 2) may contain spaces and
// parentheses, so fields are counted after its last ')'.
func ParseProcStat(b []byte) (ProcCPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcCPU{}, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return ProcCPU{}, fmt.Errorf("proc stat: %d fields after the command name", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ProcCPU{}, fmt.Errorf("proc stat: %w", err)
	}
	return ProcCPU{User: ticks(u), System: ticks(s)}, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / ClockTicks }

// ReadProcMem reads VmRSS, VmHWM and Threads of pid.
func ReadProcMem(pid string) (ProcMem, error) {
	f, err := os.Open(procRoot + "/" + pid + "/status")
	if err != nil {
		return ProcMem{}, err
	}
	defer f.Close()
	return ParseProcStatus(f)
}

// ParseProcStatus extracts VmRSS, VmHWM (kB in the file, bytes here) and
// Threads from the text of /proc/PID/status.
func ParseProcStatus(r io.Reader) (ProcMem, error) {
	var m ProcMem
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS", "VmHWM":
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
			if err != nil {
				return m, fmt.Errorf("proc status %s: %w", k, err)
			}
			if k == "VmRSS" {
				m.RSS = n * 1024
			} else {
				m.HWM = n * 1024
			}
			seen++
		case "Threads":
			n, err := strconv.Atoi(v)
			if err != nil {
				return m, fmt.Errorf("proc status Threads: %w", err)
			}
			m.Threads = n
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen < 2 {
		// Kernel threads and zombies have no Vm lines.
		return m, errors.New("proc status: no VmRSS/VmHWM (kernel thread or exited process?)")
	}
	return m, nil
}

// HostCPU is the machine-wide CPU time from the first line of /proc/stat.
type HostCPU struct {
	// Busy is every non-idle state; Idle includes iowait.
	Busy, Idle time.Duration
}

// ReadHostCPU reads the aggregate "cpu" line of /proc/stat.
func ReadHostCPU() (HostCPU, error) {
	b, err := os.ReadFile(procRoot + "/stat")
	if err != nil {
		return HostCPU{}, err
	}
	return ParseHostStat(b)
}

// ParseHostStat parses the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. Guest time is
// already counted in user, so it is skipped.
func ParseHostStat(b []byte) (HostCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return HostCPU{}, errors.New("proc stat: no aggregate cpu line")
	}
	var h HostCPU
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return HostCPU{}, fmt.Errorf("proc stat cpu: %w", err)
		}
		if i == 3 || i == 4 { // idle, iowait
			h.Idle += ticks(n)
		} else {
			h.Busy += ticks(n)
		}
	}
	return h, nil
}
