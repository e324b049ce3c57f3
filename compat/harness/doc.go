// Package harness runs distrod processes for the compatibility tests in
// this module (compat/v1, compat/v2, compat/cluster).
//
// It locates or builds the distrod binary once per test binary
// ($DISTROD_BIN, else `go build ./cmd/distrod` from the repository root),
// picks free loopback ports (HTTP port P with P+1000 and P+1001 free too),
// starts nodes with --bind 127.0.0.1 --log-level debug, waits for /readyz,
// captures their output and dumps it into the test log when a test fails,
// and stops them with SIGTERM (SIGKILL after a timeout). Nodes can be
// killed and restarted on the same ports.
//
// Synchronise with Eventually/Poll (bounded polling), never with sleeps.
//
// A test package that shares nodes between tests, or wants the built
// binary and temporary directories removed at the end, uses:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
package harness
