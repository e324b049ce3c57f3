package registry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

type fakeWriter struct{ fail bool }

func (f fakeWriter) Apply(context.Context, *Op) (Result, error) {
	if f.fail {
		return Result{}, errors.New("refused")
	}
	return Result{BeatCode: BeatOK}, nil
}

func TestCounting(t *testing.T) {
	ok, bad := NewCounting(fakeWriter{}), NewCounting(fakeWriter{fail: true})
	for _, k := range []OpKind{OpRegister, OpRegister, OpBeat, OpBatchRegister, OpKind(200)} {
		res, err := ok.Apply(context.Background(), &Op{Kind: k})
		if err != nil || res.BeatCode != BeatOK {
			t.Fatalf("Apply(%v) = %+v, %v: the inner answer must pass through", k, res, err)
		}
		if _, err := bad.Apply(context.Background(), &Op{Kind: k}); err == nil {
			t.Fatal("the inner error was lost")
		}
	}
	want := map[OpKind]uint64{OpRegister: 2, OpBeat: 1, OpBatchRegister: 1}
	for _, k := range append(Kinds(), OpKind(200)) {
		if got := ok.Count(k); got != want[k] {
			t.Errorf("Count(%v) = %d, want %d", k, got, want[k])
		}
		if got := bad.Count(k); got != 0 {
			t.Errorf("failed writes counted: Count(%v) = %d", k, got)
		}
	}
	// Every named kind is listed (a new kind must be added to Kinds), and
	// fits the counters.
	for k := OpKind(1); !strings.HasPrefix(k.String(), "op("); k++ {
		if !slices.Contains(Kinds(), k) {
			t.Errorf("Kinds() lacks %v", k)
		}
		if int(k) >= maxOpKind {
			t.Errorf("kind %v (%d) is not counted: raise maxOpKind", k, k)
		}
	}
}
