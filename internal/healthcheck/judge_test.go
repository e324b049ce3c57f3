package healthcheck

import "testing"

func TestVerdict(t *testing.T) {
	// Each case feeds results (o = ok, x = fail) to an instance whose
	// stored state follows the verdicts, and lists the writes expected
	// after each result ('.' none, 'U' unhealthy, 'H' healthy).
	for _, tt := range []struct {
		name      string
		healthy   bool
		threshold int
		results   string
		writes    string
	}{
		{"healthy stays healthy without writes", true, 3, "oooooo", "......"},
		{"three failures in a row mark it unhealthy, once", true, 3, "xxxxxx", "..U..."},
		{"a success in between resets the count", true, 3, "xxoxxoxx", "........"},
		{"flapping causes no write storm", true, 3, "xoxoxoxoxo", ".........."},
		{"three successes restore it", false, 3, "xoooo", "...H."},
		{"unhealthy stays unhealthy without writes", false, 3, "xxxxx", "....."},
		{"down, up, down", true, 2, "xxooxx", ".U.H.U"},
		{"threshold 1 follows every change", true, 1, "xoxo", "UHUH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stored := tt.healthy
			var r runs
			got := make([]byte, 0, len(tt.results))
			for i := 0; i < len(tt.results); i++ {
				r.add(tt.results[i] == 'o')
				healthy, write := verdict(stored, r, tt.threshold)
				switch {
				case !write:
					if healthy != stored {
						t.Fatalf("result %d: verdict %v without a write, stored %v", i, healthy, stored)
					}
					got = append(got, '.')
				case healthy:
					got = append(got, 'H')
				default:
					got = append(got, 'U')
				}
				stored = healthy
			}
			if string(got) != tt.writes {
				t.Fatalf("writes %s, want %s", got, tt.writes)
			}
		})
	}
}

func TestRunsSaturate(t *testing.T) {
	r := runs{fail: maxRun}
	r.add(false)
	if r.fail != maxRun || r.ok != 0 {
		t.Fatalf("%+v", r)
	}
	r.add(true)
	if r.fail != 0 || r.ok != 1 {
		t.Fatalf("%+v", r)
	}
}
