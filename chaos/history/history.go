// Package history is the operation log shared by the chaos workload (which
// writes it) and the chaos checker (which reads it): one JSON object per
// line, one line per client operation, in completion order.
//
// Every operation records when it started and ended on the wall clock of
// the machine (the workload and the checker run on the same host, so their
// clocks agree), every attempt it made against a node, and its outcome. An
// operation whose attempts all failed, but at least one of them timed out,
// is indeterminate: the server may still apply it later (Jepsen's "info"
// result), and the checker must allow for that. Even a successful operation
// may leave such an attempt behind (it timed out on one node, then
// succeeded on another).
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// Kinds of operations.
const (
	// Register is a v1 POST /nacos/v1/ns/instance.
	Register = "reg"
	// Beat is a full heartbeat (PUT /nacos/v1/ns/instance/beat with the beat
	// JSON); a full beat registers an unknown instance.
	Beat = "beat"
	// Deregister is a v1 DELETE /nacos/v1/ns/instance.
	Deregister = "dereg"
	// List is a v1 GET /nacos/v1/ns/instance/list.
	List = "list"
	// StopBeat marks the moment a client stopped beating an instance
	// without deregistering it (it crashed, as far as the server knows); it
	// makes no request.
	StopBeat = "stop"
)

// Error kinds of an attempt.
const (
	// ErrTimeout: no answer within the client timeout. The request may have
	// been applied, or may still be applied later.
	ErrTimeout = "timeout"
	// ErrRefused: the connection was refused; nothing was sent.
	ErrRefused = "refused"
	// ErrStatus: the node answered with a non-200 status.
	ErrStatus = "status"
	// ErrOther: any other transport error (reset, EOF...). The request may
	// have reached the node.
	ErrOther = "other"
)

// Attempt is one request of an operation to one node.
type Attempt struct {
	// Node is the node's address (ip:port).
	Node string `json:"n"`
	// Status is the HTTP status, 0 if there was no answer.
	Status int `json:"s,omitempty"`
	// Err is "" on success, else one of the Err* kinds.
	Err string `json:"e,omitempty"`
	// Micros is the attempt's duration.
	Micros int64 `json:"us"`
}

// Op is one client operation.
type Op struct {
	// T0 and T1 are the start and end, Unix nanoseconds.
	T0 int64 `json:"t0"`
	T1 int64 `json:"t1"`
	// Client is the simulated client's number.
	Client int    `json:"c"`
	Kind   string `json:"k"`
	// Service is the bare service name (group DEFAULT_GROUP, namespace public).
	Service string `json:"svc"`
	// Instance is "ip:port" (empty for a list).
	Instance string `json:"i,omitempty"`
	// OK: some attempt succeeded.
	OK       bool      `json:"ok"`
	Attempts []Attempt `json:"a,omitempty"`
	// BeatCode is the "code" of a beat answer (10200 ok, 20404 unknown).
	BeatCode int `json:"code,omitempty"`
	// Hosts are the "ip:port" entries a successful list returned, and
	// Unhealthy those of them marked unhealthy.
	Hosts     []string `json:"h,omitempty"`
	Unhealthy []string `json:"uh,omitempty"`
	// Durable marks an instance that is expected to stay registered without
	// heartbeats (long timeouts; bulk data of the large-snapshot scenario).
	Durable bool `json:"dur,omitempty"`
	// Persistent marks a persistent instance (ephemeral=false): never
	// beaten, never expired, gone only when deregistered.
	Persistent bool `json:"per,omitempty"`
}

// Indeterminate reports whether op failed but may have been applied: one of
// its attempts timed out or broke after the request may have been sent.
func (op *Op) Indeterminate() bool {
	return !op.OK && op.MayApplyLate()
}

// MayApplyLate reports whether some attempt of op (failed, whatever the
// outcome of the op) may still be applied by its node after op ended: a
// request stuck in a paused or slow node is processed when it wakes up.
func (op *Op) MayApplyLate() bool {
	for _, a := range op.Attempts {
		if a.Err == ErrTimeout || a.Err == ErrOther {
			return true
		}
	}
	return false
}

// Final returns the attempt that succeeded, or the last one.
func (op *Op) Final() (Attempt, bool) {
	if len(op.Attempts) == 0 {
		return Attempt{}, false
	}
	return op.Attempts[len(op.Attempts)-1], true
}

// Writer appends operations to a JSON-lines stream. It is safe for
// concurrent use.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &Writer{bw: bw, enc: json.NewEncoder(bw)}
}

// Add appends op.
func (w *Writer) Add(op *Op) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.enc.Encode(op)
	}
}

// Flush writes buffered operations out and returns the first error seen.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// ReadFile reads a history file. A truncated last line (the workload was
// killed mid-write) is ignored.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	var pending error
	for sc.Scan() {
		line++
		if pending != nil {
			return nil, pending
		}
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			pending = fmt.Errorf("%s:%d: %w", path, line, err)
			continue
		}
		ops = append(ops, op)
	}
	return ops, sc.Err()
}
