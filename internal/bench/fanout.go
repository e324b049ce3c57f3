package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Subscriber is implemented by drivers that can send a subscription
// request as one operation (the subscribe scenario): a SubscribeService
// request (v2) or an instance list carrying udpPort (v1).
type Subscriber interface {
	Subscribe(ctx context.Context, node int, service string) Outcome
}

// OwnConnWatcher is implemented by drivers whose subscriptions can each
// have a client connection of their own (the fanout scenario: many
// subscribers of one service, as many separate clients).
type OwnConnWatcher interface {
	WatchOwnConn(ctx context.Context, node int, service string) (Subscription, Outcome)
}

// subscribeScenario: subscribe to a random service of a pre-registered
// pool, as a client does when it starts watching a service. The server
// records the subscription (a repeated one is a no-op) and answers the
// current instance list.
type subscribeScenario struct {
	e *Env
	s Subscriber
}

func (s *subscribeScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	sub, ok := e.Driver.(Subscriber)
	if !ok {
		return errors.New("subscribe: the " + e.Driver.Name() + " driver cannot subscribe")
	}
	s.s = sub
	return e.registerPool(ctx, "s", e.poolSize(), false)
}

func (s *subscribeScenario) Op(ctx context.Context, w *Worker, _ int64) Outcome {
	svc := w.Rand.Int64N(int64(max(s.e.Cfg.Services, 1)))
	return s.s.Subscribe(ctx, s.e.node(w), s.e.ServiceName("s", svc))
}

func (s *subscribeScenario) Teardown(ctx context.Context, e *Env) error {
	return e.deregisterPool(ctx, "s", 0, e.poolSize(), false)
}

// fanoutScenario measures push fan-out: Subscribers clients (each on a
// connection of its own) subscribe to one service; each operation
// registers a new instance of it and records, for every subscriber, the
// time from sending the registration until a push listing the instance
// arrived. The instance is deregistered before the next operation.
type fanoutScenario struct {
	e       *Env
	service string
	subs    []Subscription

	missed, cleanupFailed atomic.Int64
	mu                    sync.Mutex // one sample at a time
}

// DefaultFanoutSubscribers is the fanout scenario's default subscriber count.
const DefaultFanoutSubscribers = 1000

func (s *fanoutScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	w, ok := e.Driver.(OwnConnWatcher)
	if !ok {
		return errors.New("fanout: the " + e.Driver.Name() + " driver cannot give each subscriber a connection of its own (use --protocol v2)")
	}
	n := e.Cfg.Subscribers
	if n <= 0 {
		n = DefaultFanoutSubscribers
	}
	s.service = e.ServiceName("f", 0)
	s.subs = make([]Subscription, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	conc := min(max(e.Cfg.Concurrency, 16), 64)
	e.Progress.Phase("subscribe", 0, int64(n), nil)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				sub, o := w.WatchOwnConn(ctx, 0, s.service)
				if !o.OK() {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, o.Kind)
					continue
				}
				s.subs[i] = sub
			}
		})
	}
	wg.Wait()
	e.Progress.End()
	if f := failed.Load(); f > 0 {
		s.closeAll()
		return fmt.Errorf("fanout: %d of %d subscriptions failed (first: %v)", f, n, firstErr.Load())
	}
	return ctx.Err()
}

func (s *fanoutScenario) closeAll() {
	for _, sub := range s.subs {
		if sub != nil {
			sub.Close()
		}
	}
}

func (s *fanoutScenario) Op(ctx context.Context, _ *Worker, seq int64) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.e
	in := Instance{Service: s.service, IP: IPFor(seq + 1), Port: 9092, Ephemeral: true, Metadata: "{}"}
	ep := in.Endpoint()
	t0 := time.Now()
	o := e.Driver.Register(ctx, 0, &in)
	o.Op = "fanout"
	if !o.OK() {
		return o
	}
	defer func() {
		if d := e.Driver.Deregister(ctx, 0, &in); !d.OK() {
			s.cleanupFailed.Add(1)
		}
	}()
	deadline := time.NewTimer(max(e.Cfg.VisibleTimeout-time.Since(t0), 0))
	defer deadline.Stop()
	o.Samples = make([]time.Duration, 0, len(s.subs))
	missed, expired := 0, false
	for _, sub := range s.subs {
		at, ok, err := awaitPush(ctx, sub, ep, deadline, &expired)
		if err != nil {
			return o.Failed("canceled")
		}
		if !ok {
			missed++
			continue
		}
		o.Samples = append(o.Samples, at.Sub(t0))
	}
	if missed > 0 {
		s.missed.Add(int64(missed))
		return o.Failed("no_push")
	}
	return o
}

// awaitPush waits for a notification on sub that lists ep and returns when
// it arrived. Once the timer has fired (expired), it only takes what is
// already queued.
func awaitPush(ctx context.Context, sub Subscription, ep Endpoint, timer *time.Timer, expired *bool) (time.Time, bool, error) {
	for {
		if *expired {
			select {
			case n := <-sub.C():
				if n.Contains(ep) {
					return n.At, true, nil
				}
				continue
			default:
				return time.Time{}, false, nil
			}
		}
		select {
		case n := <-sub.C():
			if n.Contains(ep) {
				return n.At, true, nil
			}
		case <-timer.C:
			*expired = true
		case <-ctx.Done():
			return time.Time{}, false, ctx.Err()
		}
	}
}

func (s *fanoutScenario) Teardown(context.Context, *Env) error {
	s.closeAll()
	return nil
}

// Report implements Reporter.
func (s *fanoutScenario) Report() map[string]any {
	m := map[string]any{
		"metric":         "register_to_push_per_subscriber",
		"measured_from":  "register request sent",
		"subscribers":    len(s.subs),
		"missed_pushes":  s.missed.Load(),
		"cleanup_failed": s.cleanupFailed.Load(),
	}
	if d, ok := s.e.Driver.(*GRPCDriver); ok {
		ps := d.PushStats()
		m["grpc_pushes"], m["grpc_acked"], m["grpc_bad"] = ps.Packets, ps.Acked, ps.Bad
	}
	return m
}
