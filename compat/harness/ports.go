package harness

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Port offsets every node uses: HTTP port P, client gRPC P+GRPCOffset,
// cluster gRPC P+ClusterOffset (distrod's defaults).
const (
	GRPCOffset    = 1000
	ClusterOffset = 1001
	// RaftOffset places the Raft port (cluster mode) at P-1000.
	RaftOffset = -1000
)

// Ports are picked from [portLow, portHigh): below the Linux ephemeral range
// (32768+) so outgoing connections rarely take them, above common services,
// and away from the Nacos SDK's UDP push range (54951-55950).
const (
	portLow  = 20000
	portHigh = 31000
)

var (
	portMu   sync.Mutex
	reserved = map[int]bool{} // every port handed out by this process
)

// FreePort returns an HTTP port P on 127.0.0.1 such that P, P+1000,
// P+1001 and P-1000 (TCP) and P (UDP) can be bound right now and none of them was
// handed out before by this process. Another process can still take them
// before distrod binds; Node.Start retries with new ports in that case.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		trio := []int{p, p + GRPCOffset, p + ClusterOffset, p + RaftOffset}
		if reserved[trio[0]] || reserved[trio[1]] || reserved[trio[2]] || reserved[trio[3]] {
			continue
		}
		if !canBind(trio) {
			continue
		}
		for _, q := range trio {
			reserved[q] = true
		}
		return p, nil
	}
	return 0, errors.New("no free port set P, P+1000, P+1001, P-1000 found on 127.0.0.1")
}

// FreePorts returns n distinct HTTP ports as FreePort does (for clusters,
// whose member lists need every port before any node starts).
func FreePorts(n int) ([]int, error) {
	ps := make([]int, 0, n)
	for range n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func canBind(ports []int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		closers = append(closers, ln.Close)
	}
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		return false
	}
	closers = append(closers, pc.Close)
	return true
}
