// Package raftstream is the authenticated stream layer under Raft's own
// RPCs (hashicorp/raft's NetworkTransport): append entries, votes,
// snapshot installs. Nacos's JRaft port (7848) accepted anyone (a remote
// code execution through Hessian deserialisation); here every connection
// must prove knowledge of the cluster secret before a byte of Raft traffic
// is read, and everything after the handshake is encrypted and
// authenticated.
//
// # Handshake (version 1)
//
//	client → server  magic "DRS1" | len from | from | len to | to | Nc (32 random bytes)
//	server → client  Ns (32 random bytes) | HMAC(K, "server" | T)
//	client → server  HMAC(K, "client" | T)
//
// T is the transcript (magic, from, to, Nc, Ns) and K = HMAC(secret,
// "distro.raft.v1/key"), so the key never serves another purpose of the
// same secret. from and to are member identities (ip:http-port); to may
// carry "/" and the Raft server id the dialer expects (the address handed
// to Dial was "host:port/id"). The server checks the client's proof, then
// that to is itself (and names its own server id, if any: an address
// where another server now listens refuses the connection instead of
// serving it), and that from is a member other than itself; the client
// checks the server's proof. Fresh nonces on both sides make every
// transcript unique, so a recorded handshake cannot be replayed. A failure
// closes the connection, is counted, and is logged at a bounded rate.
//
// Before the handshake, a connection from a source address that
// Config.AllowSource refuses (the node's filter: no member's IP) is
// closed unread; at most 64 handshakes run at once, at most 8 from one
// source address, and each must finish within 1 s, so stalled connections
// cannot lock members out. Dials bind the member's own IP (Config.LocalIP)
// so that peers filtering by source recognise it.
//
// # Frames
//
// After the handshake each direction is a sequence of frames, u32 length |
// AES-256-GCM ciphertext, with a per-direction key derived from K and T
// and a counter nonce: a frame altered, dropped, reordered or injected
// breaks the stream. Under --insecure-cluster (tests only) the handshake
// carries identities only and frames are plain.
package raftstream
