package distro

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

func key(i int) model.ServiceKey {
	return model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i)}
}

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.0.%d:8848", i+1)
	}
	return out
}

func TestOwnerTable(t *testing.T) {
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}
	for _, tc := range []struct {
		name     string
		eligible []string
		want     string
	}{
		{"empty", nil, ""},
		{"single", []string{"a:1"}, "a:1"},
		// Order of the list does not matter.
		{"order-a", []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"}, Owner(k, []string{"10.0.0.3:8848", "10.0.0.1:8848", "10.0.0.2:8848"})},
	} {
		if got := Owner(k, tc.eligible); got != tc.want {
			t.Errorf("%s: Owner = %q, want %q", tc.name, got, tc.want)
		}
	}
	// The namespace is part of the key.
	differ := 0
	for i := 0; i < 100; i++ {
		a, b := key(i), key(i)
		b.Namespace = "other"
		if Owner(a, nodes(5)) != Owner(b, nodes(5)) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("namespace never changes the owner: it is not part of the key")
	}
}

// Property: keys spread evenly over members (within 15% of the mean for
// 30k keys on 2..9 members).
func TestOwnerBalance(t *testing.T) {
	const keys = 30000
	for n := 2; n <= 9; n++ {
		ms := nodes(n)
		count := map[string]int{}
		for i := 0; i < keys; i++ {
			count[Owner(key(i), ms)]++
		}
		mean := float64(keys) / float64(n)
		for m, c := range count {
			if dev := math.Abs(float64(c)-mean) / mean; dev > 0.15 {
				t.Errorf("n=%d: %s owns %d keys, %.0f%% off the mean %.0f", n, m, c, dev*100, mean)
			}
		}
		if len(count) != n {
			t.Errorf("n=%d: only %d members own keys", n, len(count))
		}
	}
}

// Property: when a member joins, only keys it now wins move, about 1/(N+1);
// when one leaves, only its keys move. Hash-mod-N would move most keys.
func TestOwnerMinimalMovement(t *testing.T) {
	const keys = 20000
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 2; n <= 8; n++ {
		ms := nodes(n + 1)
		before, after := ms[:n], ms
		moved := 0
		for i := 0; i < keys; i++ {
			k := key(rng.IntN(1 << 30))
			a, b := Owner(k, before), Owner(k, after)
			if a != b {
				moved++
				if b != ms[n] {
					t.Fatalf("n=%d: key %v moved between old members %s -> %s", n, k, a, b)
				}
			}
		}
		frac, ideal := float64(moved)/keys, 1/float64(n+1)
		if math.Abs(frac-ideal) > 0.2*ideal {
			t.Errorf("join n=%d→%d: %.3f of keys moved, ideal %.3f", n, n+1, frac, ideal)
		}
		// Removing member j moves exactly the keys it owned.
		j := rng.IntN(n + 1)
		without := append(append([]string{}, ms[:j]...), ms[j+1:]...)
		for i := 0; i < 2000; i++ {
			k := key(i)
			a, b := Owner(k, ms), Owner(k, without)
			if a != ms[j] && a != b {
				t.Fatalf("leave: key %v moved %s -> %s though %s left", k, a, b, ms[j])
			}
		}
	}
}

func TestViewEligibleAndID(t *testing.T) {
	v := NewView("b:1", []Member{{"a:1", StateUp}, {"c:1", StateSuspicious}, {"d:1", StateDown}, {"b:1", StateDown}})
	if got := fmt.Sprint(v.Eligible()); got != "[a:1 b:1 c:1]" {
		t.Fatalf("eligible = %s (self is always eligible, DOWN never)", got)
	}
	w := NewView("a:1", []Member{{"c:1", StateUp}, {"b:1", StateUp}, {"d:1", StateDown}})
	if v.ID() != w.ID() {
		t.Fatal("same eligible list from different nodes must give the same ID")
	}
	x := NewView("a:1", []Member{{"c:1", StateUp}, {"b:1", StateDown}})
	if x.ID() == w.ID() {
		t.Fatal("different eligible lists gave the same ID")
	}
}

func BenchmarkOwner(b *testing.B) {
	ms := nodes(5)
	k := key(42)
	b.ReportAllocs()
	for b.Loop() {
		_ = Owner(k, ms)
	}
}
