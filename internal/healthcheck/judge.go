package healthcheck

// runs counts the latest consecutive check results of one instance: at
// most one of ok and fail is non-zero.
type runs struct{ ok, fail int }

// maxRun caps the counters (they only need to reach the threshold).
const maxRun = 1 << 20

func (r *runs) add(ok bool) {
	if ok {
		r.ok, r.fail = min(r.ok+1, maxRun), 0
	} else {
		r.fail, r.ok = min(r.fail+1, maxRun), 0
	}
}

// verdict decides what to record for an instance whose stored health is
// stored, after the results counted in r: threshold consecutive failures
// turn a healthy instance unhealthy, threshold consecutive successes turn an
// unhealthy one healthy again (Nacos checkTimes). write is false while the
// results do not contradict the stored state that often, so a flapping
// instance causes no write storm, and an instance whose state already
// matches causes no write at all.
func verdict(stored bool, r runs, threshold int) (healthy, write bool) {
	switch {
	case stored && r.fail >= threshold:
		return false, true
	case !stored && r.ok >= threshold:
		return true, true
	}
	return stored, false
}
