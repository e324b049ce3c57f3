package registry

import (
	"context"
	"sync/atomic"
)

// maxOpKind bounds the kinds Counting keeps apart; later kinds are not counted.
const maxOpKind = 16

// Counting wraps a Writer and counts the writes that succeed through it, by
// kind: the writes this node's clients made, wherever the owner applied them.
// The counters feed the client_writes_total metric and the console's charts.
type Counting struct {
	Writer
	n [maxOpKind]atomic.Uint64
}

// NewCounting returns w with counters.
func NewCounting(w Writer) *Counting { return &Counting{Writer: w} }

// Apply implements Writer.
func (c *Counting) Apply(ctx context.Context, op *Op) (Result, error) {
	res, err := c.Writer.Apply(ctx, op)
	if err == nil && int(op.Kind) < maxOpKind {
		c.n[op.Kind].Add(1)
	}
	return res, err
}

// Count returns how many writes of kind k succeeded.
func (c *Counting) Count(k OpKind) uint64 {
	if int(k) >= maxOpKind {
		return 0
	}
	return c.n[k].Load()
}

// Kinds lists every write kind, for callers that report all counters.
func Kinds() []OpKind {
	return []OpKind{OpRegister, OpDeregister, OpUpdate, OpPatch, OpBeat, OpCreateService, OpUpdateService, OpDeleteService,
		OpBatchRegister, OpUpdateCluster, OpSetHealth}
}
