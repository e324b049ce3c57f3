package member

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
)

// Lookup produces the configured member list and reports changes. It is the
// seam between "where the list comes from" (a flag, a file, an address server)
// and Health, which only ever sees full lists.
type Lookup interface {
	// Start begins watching/polling; it calls onChange with the full, sorted
	// member list every time the list changes (and once with the initial list
	// before Start returns, if it is known). Calls to onChange never overlap.
	// Watching stops when ctx is cancelled. Start must be called at most once.
	Start(ctx context.Context, onChange func([]string)) error
	// Name identifies the mode in logs and status pages: "standalone",
	// "file", "static", "address-server" or "dns".
	Name() string
}

// fixedLookup serves a list that never changes.
type fixedLookup struct {
	name  string
	addrs []string
}

// Standalone is the lookup for a single-node deployment: the list is only
// self, so the node owns every key and never probes anyone.
func Standalone(self string) Lookup {
	return &fixedLookup{name: "standalone", addrs: []string{self}}
}

// Static is the lookup for a fixed list given on the command line
// (--members). The addresses should already be normalised with ParseMembers,
// so that they match the strings peers use; Static only sorts and
// de-duplicates them.
func Static(addrs []string) Lookup {
	a := slices.Clone(addrs)
	slices.Sort(a)
	return &fixedLookup{name: "static", addrs: slices.Compact(a)}
}

func (l *fixedLookup) Name() string { return l.name }

func (l *fixedLookup) Start(_ context.Context, onChange func([]string)) error {
	if len(l.addrs) == 0 || l.addrs[0] == "" {
		return errors.New("member: " + l.name + " lookup: empty member list")
	}
	onChange(slices.Clone(l.addrs))
	return nil
}

// orDiscard returns l, or a logger that drops everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Forwarder connects a Lookup to a Health that cannot exist yet when the
// lookup starts: self identity (ResolveSelf), and so the Health, can only be
// decided from the first list. Pass OnChange to Lookup.Start, read Latest to
// resolve self, then Attach the Health; no change is lost in between.
type Forwarder struct {
	mu     sync.Mutex
	latest []string
	h      *Health
}

// OnChange records list and forwards it to the attached Health, if any.
func (f *Forwarder) OnChange(list []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latest = slices.Clone(list)
	if f.h != nil {
		f.h.SetMembers(list)
	}
}

// Latest returns the last list received, or nil.
func (f *Forwarder) Latest() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.latest)
}

// Attach hands h the latest list and every later one.
func (f *Forwarder) Attach(h *Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h = h
	if f.latest != nil {
		h.SetMembers(f.latest)
	}
}
