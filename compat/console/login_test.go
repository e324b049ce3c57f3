package console

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/distro-registry/distro/compat/harness"
)

// TestConsoleLoginInBrowser runs a node with client auth on: the console
// sends the browser to its login page, refuses a wrong password, logs the
// admin in with the keyboard, logs out, and gives a read-only user a
// read-only view without the cluster page.
func TestConsoleLoginInBrowser(t *testing.T) {
	art := artifactDir(t)
	b := newBrowser(t, art)
	n := harness.StartNode(t, harness.Options{Name: "console-auth", Args: harness.AuthArgs()})
	svc := harness.UniqueName("console", "secured")
	if err := n.AdminHTTP(t).RegisterInstance(url.Values{"serviceName": {svc}, "ip": {"10.78.0.1"}, "port": {"80"}}); err != nil {
		t.Fatal(err)
	}
	reader := n.AddUser(t, "reader", "reader-password", "public:DEFAULT_GROUP:naming/"+svc, "r")

	b.open(n.NacosURL() + "/services?q=" + svc)
	b.waitJS("redirected to the login page", `location.pathname === "/nacos/login" && document.querySelector("#l-user") !== null`, 5*time.Second)
	if lbl := eval[string](b, `document.querySelector('label[for="l-pass"]').innerText`); lbl != "Password" {
		t.Fatalf("password field label = %q", lbl)
	}
	b.noOverflow("login 1280")
	b.shot("1280-login")
	// The user name field has focus; type, Tab, type, Enter.
	if f := b.focused(); !strings.HasPrefix(f, "input#l-user") {
		t.Fatalf("focus on the login page is on %q, want the user name", f)
	}
	b.press(harness.Admin.Username + kb.Tab + "wrong-password" + kb.Enter)
	b.waitJS("refused", `document.querySelector("#login-error") !== null`, 5*time.Second)
	if msg := eval[string](b, `document.querySelector("#login-error").innerText`); !strings.Contains(msg, "wrong username or password") {
		t.Fatalf("login error = %q", msg)
	}
	b.do("type the password", chromedp.Focus(chromedp.ID("l-pass")), chromedp.KeyEvent(harness.AdminPassword+kb.Enter))
	b.waitJS("logged in, back where we were", `location.pathname === "/nacos/services" && document.body.innerText.includes(`+strconv.Quote(svc)+`)`, 5*time.Second)
	if u := eval[string](b, `document.querySelector("form.user span").innerText`); u != "nacos (admin)" {
		t.Fatalf("user shown as %q", u)
	}
	if !eval[bool](b, `document.querySelector('nav a[href="/nacos/cluster"]') !== null`) {
		t.Fatal("the admin has no cluster link")
	}
	b.do("log out", chromedp.Click(chromedp.CSS("form.user button")))
	b.waitJS("logged out", `location.pathname === "/nacos/login" && document.querySelector("#flash") && document.querySelector("#flash").innerText.includes("Logged out")`, 5*time.Second)

	// A user who may only read this service.
	b.do("log in as the reader", chromedp.SendKeys(chromedp.ID("l-user"), reader.Username), chromedp.SendKeys(chromedp.ID("l-pass"), reader.Password+kb.Enter))
	b.waitJS("reader logged in", `document.querySelector("form.user span") !== null`, 5*time.Second)
	b.open(n.NacosURL() + "/service?name=" + svc)
	b.waitJS("service page", `document.body.innerText.includes("10.78.0.1:80")`, 5*time.Second)
	text := b.text()
	if !strings.Contains(text, "read-only access") || strings.Contains(text, "Take offline") {
		t.Fatalf("the reader's service page is not read-only:\n%s", text)
	}
	if eval[bool](b, `document.querySelector('nav a[href="/nacos/cluster"]') !== null`) {
		t.Fatal("the reader sees the cluster link")
	}
	b.shot("1280-service-reader")
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	b.do("log out", chromedp.Click(chromedp.CSS("form.user button")))
	b.waitJS("logged out", `location.pathname === "/nacos/login"`, 5*time.Second)
	b.noOverflow("login phone")
	b.shot("phone-login")

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("the browser console reported errors:\n%s\nall messages:\n%s", strings.Join(errs, "\n"), b.allMessages())
	}
}
