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
// Besides the processes, it holds what the SDK test packages share: names
// and keys (names.go), a collector of subscribe callbacks that tests wait
// on (Subscriber), helpers for nacos-sdk-go v1.1.6 (sdkv1.go: NewV1Client,
// whose HTTP exchanges are recorded by sdkv1wire.go) and for
// nacos-sdk-go/v2 v2.3.5 (sdkv2.go: NewV2Client).
//
// A test package that shares nodes between tests, or wants the built
// binary and temporary directories removed at the end, uses:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
package harness
