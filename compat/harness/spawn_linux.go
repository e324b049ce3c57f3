package harness

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// On Linux every node gets PDEATHSIG=SIGKILL so that a test binary that dies
// (panic, `go test -timeout`) does not leave distrod processes behind. The
// kernel sends that signal when the *thread* that forked the child exits, so
// all processes are started from one goroutine locked to an OS thread that
// never exits.

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func startProcess(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd: cmd, done: done}
	return <-done
}
