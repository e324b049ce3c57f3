package console

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1clients "github.com/nacos-group/nacos-sdk-go/clients"
	v1constant "github.com/nacos-group/nacos-sdk-go/common/constant"
	v1model "github.com/nacos-group/nacos-sdk-go/model"
	v2model "github.com/nacos-group/nacos-sdk-go/v2/model"
	v2vo "github.com/nacos-group/nacos-sdk-go/v2/vo"
	v1vo "github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/distro-registry/distro/compat/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// The killed client: the test binary runs itself as a process that
// registers one instance with the v1 SDK, beats every second, and waits to
// be SIGKILLed.
const (
	helperEnvPort = "CONSOLE_HELPER_PORT"
	helperEnvSvc  = "CONSOLE_HELPER_SERVICE"
	killedIP      = "10.77.0.9"
	killedPort    = 8080
	// killedTimeout is the killed instance's heartbeat timeout (ms): it
	// turns unhealthy this long after its last beat, and is removed only
	// after a minute, so the page shows it unhealthy for a good while.
	killedTimeout = 3000
)

func TestHelperKilledClient(t *testing.T) {
	port, svc := os.Getenv(helperEnvPort), os.Getenv(helperEnvSvc)
	if port == "" {
		t.Skip("runs only as the killed client of TestConsoleInBrowser")
	}
	p, err := strconv.ParseUint(port, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nc, err := v1clients.NewNamingClient(v1vo.NacosClientParam{
		ClientConfig: &v1constant.ClientConfig{TimeoutMs: 3000, NotLoadCacheAtStart: true, CacheDir: filepath.Join(dir, "cache"),
			LogDir: filepath.Join(dir, "log")},
		ServerConfigs: []v1constant.ServerConfig{{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: p}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := nc.RegisterInstance(v1vo.RegisterInstanceParam{ServiceName: svc, Ip: killedIP, Port: killedPort, Weight: 1, Enable: true,
		Healthy: true, Ephemeral: true, Metadata: map[string]string{
			"preserved.heart.beat.interval": "1000", "preserved.heart.beat.timeout": strconv.Itoa(killedTimeout),
			"preserved.ip.delete.timeout": "60000", "role": "killed-client"}})
	if err != nil || !ok {
		t.Fatalf("register: %v %v", ok, err)
	}
	fmt.Println("REGISTERED")
	time.Sleep(2 * time.Minute) // bounded: the parent kills it long before
}

func startKilledClient(t *testing.T, port int, svc string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledClient$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnvPort+"="+strconv.Itoa(port), helperEnvSvc+"="+svc)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("--- killed client output ---\n%s", out.String())
		}
	})
	return cmd
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONSOLE_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// rowJS is a JavaScript expression: the text of the live table row of addr,
// or "" if there is none.
func rowJS(addr string) string {
	return `(function(){ const r = [...document.querySelectorAll("#live tbody tr")].find(r => r.querySelector("th") && r.querySelector("th").innerText.trim() === ` +
		strconv.Quote(addr) + `); return r ? r.innerText : "" })()`
}

// addrs lists "ip:port" of SDK hosts, sorted.
func addrs[H any](hosts []H, ipPort func(H) (string, uint64)) []string {
	var out []string
	for _, h := range hosts {
		ip, port := ipPort(h)
		out = append(out, fmt.Sprintf("%s:%d", ip, port))
	}
	slices.Sort(out)
	return out
}

func v1Addr(h v1model.Instance) (string, uint64) { return h.Ip, h.Port }
func v2Addr(h v2model.Instance) (string, uint64) { return h.Ip, h.Port }

// tabTo presses Tab until the focused element is a tag element whose text
// contains want (at most max presses), as a keyboard user would, and
// returns how many presses it took.
func tabTo(t *testing.T, b *browser, tag, want string, max int) int {
	t.Helper()
	for i := 1; i <= max; i++ {
		b.press(kb.Tab)
		if f := b.focused(); strings.HasPrefix(f, tag) && strings.Contains(f, want) {
			return i
		}
	}
	t.Fatalf("<%s> with %q not reached with %d Tab presses; focus is on %q", tag, want, max, b.focused())
	return 0
}

// TestConsoleInBrowser drives the console of a two-node cluster in
// headless Chromium.
func TestConsoleInBrowser(t *testing.T) {
	art := artifactDir(t)
	b := newBrowser(t, art)
	c := harness.StartCluster(t, 2, harness.Options{Name: "console", Args: harness.FastClusterArgs("--console-edit")})
	if err := c.WaitAllUp(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	a := c.Nodes[0]
	svc := harness.UniqueName("console", "orders")
	addr := func(i int) string { return fmt.Sprintf("10.77.0.%d:8080", i) }

	// Providers: two heartbeating v1 instances, one connection-held v2 one.
	// Consumers: a v1 subscriber (UDP push) and a v2 subscriber (gRPC).
	v1c := harness.NewV1Client(t, "provider", a)
	for i := 1; i <= 2; i++ {
		p := harness.V1RegisterParam(svc, "10.77.0."+strconv.Itoa(i), 8080, "")
		p.Metadata = map[string]string{"version": "1.4." + strconv.Itoa(i), "zone": "eu-west-1"}
		v1c.MustRegister(t, p)
	}
	v2c := harness.NewV2Client(t, harness.UniqueName("console"), a)
	v2c.MustRegister(t, harness.V2RegisterParam(svc, "10.77.0.3", 8080, ""))
	if err := v1c.Subscribe(&v1vo.SubscribeParam{ServiceName: svc, SubscribeCallback: func([]v1model.SubscribeService, error) {}}); err != nil {
		t.Fatal(err)
	}
	if err := v2c.Subscribe(&v2vo.SubscribeParam{ServiceName: svc, SubscribeCallback: func([]v2model.Instance, error) {}}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
			if err != nil || len(s.Hosts) != 3 {
				return fmt.Errorf("%s lists %v (%v)", n.Addr(), s, err)
			}
		}
		return nil
	})

	// Overview, at the Nacos path. The skip link is the first stop of the
	// keyboard and moves focus to the content.
	b.open(a.NacosURL() + "/")
	b.waitJS("overview counts", `document.querySelector("#live .cards") !== null`, 5*time.Second)
	if n := tabTo(t, b, "a", "Skip to content", 1); n != 1 {
		t.Fatalf("the skip link is not the first Tab stop")
	}
	b.press(kb.Enter)
	b.waitJS("skip link moves focus", `document.activeElement && document.activeElement.id === "main"`, 2*time.Second)
	b.noOverflow("overview 1280")
	b.shot("1280-overview")

	// To Services with the keyboard, and search.
	b.open(a.NacosURL() + "/")
	tabTo(t, b, "a", "Services", 6)
	b.press(kb.Enter)
	b.waitJS("services page", `location.pathname === "/nacos/services" && document.querySelector("#f-q") !== null`, 5*time.Second)
	b.do("type a search", chromedp.Focus(chromedp.ID("f-q")), chromedp.KeyEvent(svc+kb.Enter))
	// The unfiltered list shows the service too: wait for the search's page.
	b.waitJS("search result", `new URLSearchParams(location.search).get("q") === `+strconv.Quote(svc)+` && document.readyState === "complete" && `+
		`[...document.querySelectorAll("#live tbody th a")].some(a => a.innerText === `+strconv.Quote(svc)+`)`, 5*time.Second)
	if n := eval[int](b, `document.querySelectorAll("#live tbody tr").length`); n != 1 {
		t.Fatalf("search for %s lists %d services", svc, n)
	}
	row := eval[string](b, `document.querySelector("#live tbody tr").innerText`)
	if !strings.Contains(row, "3") || !strings.Contains(row, "127.0.0.1:") {
		t.Fatalf("service row lacks counts or owner: %q", row)
	}
	b.noOverflow("services 1280")
	b.shot("1280-services")
	tabTo(t, b, "a", svc, 40)
	b.press(kb.Enter)
	b.waitJS("service page", `document.querySelector("h1") && document.querySelector("h1").innerText === `+strconv.Quote(svc), 5*time.Second)
	serviceURL := eval[string](b, `location.href`)

	// Its instances, where their liveness comes from, and its subscribers.
	for i := 1; i <= 3; i++ {
		b.waitJS("instance "+addr(i), rowJS(addr(i))+` !== ""`, 5*time.Second)
	}
	if r := eval[string](b, rowJS(addr(3))); !strings.Contains(r, "gRPC connection") {
		t.Fatalf("the v2 instance's row does not say it is connection-held: %q", r)
	}
	if r := eval[string](b, rowJS(addr(1))); !strings.Contains(r, "zone=eu-west-1") || !strings.Contains(r, "healthy") || !strings.Contains(r, "online") {
		t.Fatalf("row of %s = %q", addr(1), r)
	}
	b.waitJS("both subscribers listed", `document.body.innerText.includes("UDP push (v1)") && document.body.innerText.includes("gRPC (v2)")`, 5*time.Second)
	b.noOverflow("service 1280")
	b.shot("1280-service")

	// Take 10.77.0.1 offline with the keyboard.
	presses := tabTo(t, b, "button#toggle-", "Take offline "+addr(1), 60)
	t.Logf("the offline button of %s is %d Tab presses from the top", addr(1), presses)
	b.press(kb.Enter)
	b.waitJS("confirmation", `document.querySelector("#flash") && document.querySelector("#flash").innerText.includes("taken offline")`, 5*time.Second)
	b.waitJS("row shows offline", rowJS(addr(1))+`.includes("offline") && `+rowJS(addr(1))+`.includes("Bring online")`, 5*time.Second)
	// Both SDKs stop selecting it (they were told by push), and still
	// select the others.
	want := []string{addr(2), addr(3)}
	harness.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		got1, err := v1c.SelectInstances(v1vo.SelectInstancesParam{ServiceName: svc, HealthyOnly: true})
		if err != nil || !slices.Equal(addrs(got1, v1Addr), want) {
			return fmt.Errorf("v1 SDK selects %v (%v), want %v", addrs(got1, v1Addr), err, want)
		}
		got2, err := v2c.SelectInstances(v2vo.SelectInstancesParam{ServiceName: svc, HealthyOnly: true})
		if err != nil || !slices.Equal(addrs(got2, v2Addr), want) {
			return fmt.Errorf("v2 SDK selects %v (%v), want %v", addrs(got2, v2Addr), err, want)
		}
		return nil
	})
	for range 20 {
		h, err := v1c.SelectOneHealthyInstance(v1vo.SelectOneHealthInstanceParam{ServiceName: svc})
		if err != nil || fmt.Sprintf("%s:%d", h.Ip, h.Port) == addr(1) {
			t.Fatalf("SelectOneHealthyInstance = %+v, %v: picked the offline instance", h, err)
		}
	}

	// A client that registers and is then killed: the open page shows it
	// arrive, then turn unhealthy, without a reload.
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__consoleMarker = "still the same page"`))
	killed := startKilledClient(t, a.Port(), svc)
	b.waitJS("the new client's instance appears live", rowJS(killedIP+":8080")+`.includes("healthy") && !`+rowJS(killedIP+":8080")+`.includes("unhealthy")`, 15*time.Second)
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	killedAt := time.Now()
	seen := b.waitJS("the killed client's instance turns unhealthy live", rowJS(killedIP+":8080")+`.includes("unhealthy")`, 20*time.Second)
	t.Logf("killed client's instance shown unhealthy %v after SIGKILL (heartbeat timeout %d ms)", time.Since(killedAt).Round(10*time.Millisecond), killedTimeout)
	_ = seen
	if m := eval[string](b, `String(window.__consoleMarker)`); m != "still the same page" {
		t.Fatalf("the page was reloaded (marker %q): the change must arrive live", m)
	}
	if r := eval[string](b, rowJS(killedIP+":8080")); !strings.Contains(r, "missed heartbeats") {
		t.Fatalf("unhealthy row does not say why: %q", r)
	}
	b.shot("1280-service-unhealthy")

	// Edit 10.77.0.2's weight in its form.
	editID := eval[string](b, `[...document.querySelectorAll('a[id^="edit-"]')].find(a => a.textContent.includes(`+strconv.Quote(addr(2))+`)).id`)
	b.do("open the edit form", chromedp.Click(chromedp.ID(editID)))
	b.waitJS("edit form", `document.querySelector("#e-weight") !== null`, 5*time.Second)
	if lbl := eval[string](b, `document.querySelector('label[for="e-weight"]').innerText`); lbl != "Weight" {
		t.Fatalf("weight field label = %q", lbl)
	}
	b.noOverflow("edit 1280")
	b.shot("1280-instance-edit")
	b.do("set weight", chromedp.Clear(chromedp.ID("e-weight")), chromedp.SendKeys(chromedp.ID("e-weight"), "3"), chromedp.Click(chromedp.ID("e-save")))
	b.waitJS("saved", `document.querySelector("#flash") && document.querySelector("#flash").innerText.includes("Instance updated")`, 5*time.Second)
	harness.Eventually(t, 5*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
			if err != nil {
				return err
			}
			if h := s.Find("10.77.0.2", 8080); h == nil || h.Weight != 3 {
				return fmt.Errorf("%s lists %+v", n.Addr(), h)
			}
		}
		return nil
	})

	// The cluster page: both members UP, and sync figures towards the peer
	// that the live view fills in.
	b.open(a.NacosURL() + "/cluster")
	if n := eval[int](b, `[...document.querySelectorAll("#live tbody tr")].filter(r => r.innerText.includes("UP")).length`); n != 2 {
		t.Fatalf("%d members shown UP, want 2:\n%s", n, b.text())
	}
	b.waitJS("sync figures", `[...document.querySelectorAll('td[data-label="Synced changes"]')].some(td => Number(td.innerText) > 0)`, 10*time.Second)
	b.noOverflow("cluster 1280")
	b.shot("1280-cluster")
	// The /ui/ path serves the same console.
	b.open(a.BaseURL() + "/ui/services?q=" + svc)
	b.waitJS("ui path", `document.title.startsWith("Services")`, 5*time.Second)

	// Phone width: every page fits without sideways scrolling, and tables
	// turn into one card per row.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	for _, p := range []struct{ name, url string }{
		{"overview", a.NacosURL() + "/"},
		{"services", a.NacosURL() + "/services"},
		{"service", serviceURL},
		{"cluster", a.NacosURL() + "/cluster"},
	} {
		b.open(p.url)
		if w := eval[int](b, `window.innerWidth`); w != 390 {
			t.Fatalf("phone viewport is %d px wide", w)
		}
		b.noOverflow(p.name + " phone")
		if p.name == "service" {
			if d := eval[string](b, `getComputedStyle(document.querySelector("#live tbody tr")).display`); d != "block" {
				t.Fatalf("instance rows are not cards at phone width (display %q)", d)
			}
		}
		b.shot("phone-" + p.name)
	}

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("the browser console reported errors:\n%s\nall messages:\n%s", strings.Join(errs, "\n"), b.allMessages())
	}
}
