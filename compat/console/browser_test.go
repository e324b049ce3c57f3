package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium tab plus what its console printed.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string

	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// chromiumPath finds the browser, or skips/fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("COMPAT_SKIP_BROWSER") == "1" {
		t.Skip("no chromium on PATH and COMPAT_SKIP_BROWSER=1")
	}
	t.Fatal("chromium not found: install Debian's chromium (apt-get install chromium), set CHROMIUM_BIN, or set COMPAT_SKIP_BROWSER=1 to skip the browser test")
	return ""
}

// newBrowser starts Chromium with the flags this closed network needs
// (no background connections, no component updates) and a fresh profile.
func newBrowser(t *testing.T, artifacts string) *browser {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, tcancel := context.WithTimeout(ctx, 3*time.Minute)
	b := &browser{t: t, ctx: ctx, dir: artifacts}
	t.Cleanup(func() {
		tcancel()
		cancel()
		acancel()
	})
	// Subscribe before the first page, so that no message is lost.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true. It keeps polling
// through navigations (an evaluation during one fails and is retried).
func (b *browser) waitJS(what, expr string, timeout time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("%s: %q still false after %v (last error %v); page text:\n%s", what, expr, timeout, last, b.text())
	return 0
}

func (b *browser) text() string {
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// open navigates and waits until the page and htmx are loaded.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
	b.waitJS("page ready", `document.readyState === "complete" && typeof htmx === "object"`, 10*time.Second)
}

// press sends keys to whatever has focus, as a keyboard user would.
func (b *browser) press(keys string) {
	b.t.Helper()
	b.do("press keys", chromedp.KeyEvent(keys))
}

// focused describes the element that has focus.
func (b *browser) focused() string {
	return eval[string](b, `(function(e){ return e ? (e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + (e.textContent || e.value || "").replace(/\s+/g, " ").trim()) : "" })(document.activeElement)`)
}

// shot writes a full-page screenshot to the artifact folder. Chromium's
// full-page capture now and then never answers on a loaded machine, so each
// attempt is bounded and retried; the last resort is the viewport only.
func (b *browser) shot(name string) {
	b.t.Helper()
	var png []byte
	var err error
	for attempt := range 4 {
		action := chromedp.FullScreenshot(100)
		if attempt == 3 {
			action = chromedp.CaptureScreenshot()
		}
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		png, err = chromedp.Run(ctx, action)
		cancel()
		if err == nil {
			break
		}
		b.t.Logf("screenshot %s, attempt %d: %v", name, attempt+1, err)
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d KiB)", path, len(png)/1024)
}

// noOverflow fails if the page is wider than the viewport (a phone user
// would have to scroll sideways).
func (b *browser) noOverflow(where string) {
	b.t.Helper()
	w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if w[0] > w[1]+1 {
		b.t.Errorf("%s: page is %d px wide in a %d px viewport", where, w[0], w[1])
	}
}

// consoleErrors returns the errors and exceptions the pages printed.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
		}
	}
	return out
}

// allMessages is every console message, for failure logs.
func (b *browser) allMessages() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, m := range b.msgs {
		fmt.Fprintf(&sb, "%s\n", m.String())
	}
	return sb.String()
}
