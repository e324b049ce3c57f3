// Package console tests distrod's web console in a real browser: headless
// Debian Chromium driven by github.com/chromedp/chromedp, against a real
// distrod with services registered by the Nacos Go SDKs (v1.1.6 and
// v2.3.5). It finds a service, sees its instances and subscribers, takes an
// instance offline with the keyboard and checks with both SDKs that it is
// no longer selected, watches a killed client's instance turn unhealthy on
// the open page without a reload, and walks every page at 1280×800 and at
// phone width, failing on any browser console error or horizontal overflow.
// Screenshots of every page go to $CONSOLE_ARTIFACTS (default
// compat/console/artifacts, gitignored).
//
// Chromium is found as $CHROMIUM_BIN or chromium on PATH (Debian package
// chromium; .ci/run installs it). Without it the test fails, unless
// COMPAT_SKIP_BROWSER=1 says to skip it.
package console
