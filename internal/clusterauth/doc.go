// Package clusterauth authenticates every message exchanged between cluster
// members.
//
// A Signer wraps a serialized Request or Response in a clusterpb.Envelope
// carrying the sender's identity, its wall clock in Unix milliseconds, a
// 16-byte random nonce and an HMAC-SHA256 over all of them under a shared
// cluster secret of at least 32 bytes. Verify recomputes the MAC (constant
// time), then rejects envelopes outside the clock-skew window (30 s by
// default) and nonces already seen within that window. Nothing in an
// envelope is trusted before its MAC verifies.
//
// This closes the hole behind Nacos CVE-2021-29441, where peer endpoints
// were reachable by anyone who sent the right User-Agent: there are no
// static header values or source addresses to forge, only a key to know.
//
// The scheme provides authenticity, integrity and freshness, not
// confidentiality; bodies travel in the clear unless the transport adds TLS.
//
// Insecure returns a Signer that neither signs nor checks; it exists only
// for an explicit --insecure-cluster flag in tests and labs.
package clusterauth
