package grpcapi

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// TestPushAtMergeWindowEnd: a push leaves when its service's merge window
// closes, not at the dispatcher's next tick (which would add up to a tick
// to every push), and the next queued service is pushed at its own
// deadline. Changes at 3ms and 8ms must be pushed at 23ms and 28ms (a
// 10ms tick alone gave 30ms for both; the housekeeping tick is 100ms).
func TestPushAtMergeWindowEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.New("127.0.0.1:8848", hlc.New(nil))
		local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, slog.New(slog.DiscardHandler))
		s, err := New(Config{Store: st, Writer: local, Conns: local, MergeWindow: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		type sent struct {
			at  time.Duration
			msg any
		}
		start := time.Now()
		out := make(chan sent, 8)
		c := s.openConn(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000})
		c.out = newOutbox(16, func(m any) error { out <- sent{time.Since(start), m}; return nil })
		c.state.Store(stateRegistered)
		a := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "a"}
		b := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "b"}
		for _, k := range []model.ServiceKey{a, b} {
			if err := s.addSub(c, k, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.dispatchLoop(ctx); close(done) }()

		time.Sleep(3 * time.Millisecond)
		s.onChange(store.Event{Key: a})
		time.Sleep(5 * time.Millisecond)
		s.onChange(store.Event{Key: b})
		s.onChange(store.Event{Key: a}) // rides along: a's deadline stands
		for i, want := range []time.Duration{23 * time.Millisecond, 28 * time.Millisecond} {
			got := <-out
			if got.at != want {
				t.Errorf("push %d sent at %v, want %v (its merge window's end)", i, got.at, want)
			}
		}
		time.Sleep(100 * time.Millisecond)
		select {
		case extra := <-out:
			t.Errorf("unexpected message at %v: %v", extra.at, extra.msg)
		default:
		}
		cancel()
		<-done
	})
}

func TestHousekeepingTick(t *testing.T) {
	def := Config{}.withDefaults()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want time.Duration
	}{
		{"defaults", func(*Config) {}, 100 * time.Millisecond},
		{"short ack timeout", func(c *Config) { c.AckTimeout = 30 * time.Millisecond }, 3 * time.Millisecond},
		{"short probe interval", func(c *Config) { c.ProbeInterval = 20 * time.Millisecond }, 2 * time.Millisecond},
		{"short reset timeout", func(c *Config) { c.ResetTimeout = 200 * time.Millisecond }, 20 * time.Millisecond},
		{"floor", func(c *Config) { c.ProbeTimeout = time.Millisecond }, time.Millisecond},
	} {
		c := def
		tc.mod(&c)
		if got := housekeepingTick(c); got != tc.want {
			t.Errorf("%s: tick %v, want %v", tc.name, got, tc.want)
		}
	}
}
