package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileDebounce is how long the file must be quiet before it is re-read, so
// that an editor's truncate+write or write+rename sequence is read once, whole.
const fileDebounce = 100 * time.Millisecond

// k8sDataDir is the symlink Kubernetes swaps when it updates a mounted
// ConfigMap; the file itself gets no event of its own in that case.
const k8sDataDir = "..data"

// FileLookup reads the member list from a cluster.conf file and follows edits
// live, so that members can be added or removed without restarting nodes.
type FileLookup struct {
	path        string
	defaultPort int
	log         *slog.Logger
	debounce    time.Duration
}

var _ Lookup = (*FileLookup)(nil)

// File returns a lookup that reads path in cluster.conf format (see
// ParseMembers) and watches it. It watches the directory rather than the
// file, so editors and tools that replace the file by rename, and Kubernetes
// ConfigMap updates, are seen. A change that does not parse, or that leaves
// the list empty, is logged and ignored: the last good list stays in force.
func File(path string, defaultPort int, logger *slog.Logger) *FileLookup {
	return &FileLookup{path: path, defaultPort: defaultPort, log: orDiscard(logger), debounce: fileDebounce}
}

// Name returns "file".
func (f *FileLookup) Name() string { return "file" }

// Start reads the file, calls onChange with its list and then watches it in a
// goroutine until ctx is cancelled. It fails if the file cannot be watched,
// read or parsed, or lists no member: a node must not start with an unknown
// cluster.
func (f *FileLookup) Start(ctx context.Context, onChange func([]string)) error {
	abs, err := filepath.Abs(f.path)
	if err != nil {
		return fmt.Errorf("member: file lookup: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("member: file lookup: %w", err)
	}
	// Watch before the first read, so that an edit in between is not missed.
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return fmt.Errorf("member: file lookup: watch %s: %w", filepath.Dir(abs), err)
	}
	names := map[string]bool{filepath.Base(abs): true, k8sDataDir: true}
	// If the path is a symlink into another directory, in-place edits of the
	// target only show up there.
	if target, err := filepath.EvalSymlinks(abs); err == nil && target != abs {
		names[filepath.Base(target)] = true
		if d := filepath.Dir(target); d != filepath.Dir(abs) {
			if err := w.Add(d); err != nil {
				f.log.Warn("cannot watch the member file's symlink target directory; in-place edits of the target may be missed",
					"path", abs, "target", target, "error", err)
			}
		}
	}
	list, err := f.read(abs)
	if err != nil {
		w.Close()
		return fmt.Errorf("member: file lookup: %w", err)
	}
	f.log.Info("member list loaded", "lookup", "file", "path", abs, "members", list)
	onChange(slices.Clone(list))
	go f.watch(ctx, w, abs, names, list, onChange)
	return nil
}

func (f *FileLookup) read(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	list, err := ParseMembers(string(b), f.defaultPort)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no members listed", path)
	}
	return list, nil
}

func (f *FileLookup) watch(ctx context.Context, w *fsnotify.Watcher, path string, names map[string]bool, last []string, onChange func([]string)) {
	defer w.Close()
	timer := time.NewTimer(f.debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if names[filepath.Base(ev.Name)] &&
				ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Remove) {
				timer.Reset(f.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// Overflow means events were lost; re-read to be sure.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(f.debounce)
			}
			f.log.Warn("member file watch error", "path", path, "error", err)
		case <-timer.C:
			list, err := f.read(path)
			if err != nil {
				f.log.Error("member list file unusable; keeping the last good list",
					"path", path, "error", err, "members", last)
				continue
			}
			if slices.Equal(list, last) {
				f.log.Debug("member list file re-read; list unchanged", "path", path)
				continue
			}
			f.log.Info("member list file changed", "path", path, "members", list, "previous", last)
			last = list
			onChange(slices.Clone(list))
		}
	}
}
