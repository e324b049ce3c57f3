// Package server is distrod's composition root: it builds the store, the
// write path, push, the HTTP API and (in a cluster) the Distro engine from a
// config.Config, starts their loops and listeners, and shuts them down in
// order. It holds no protocol logic of its own.
//
// With client auth on (--auth; on by default in a cluster) it also builds the
// auth.Authority over the auth data on Raft (internal/authcp, seeded once
// from an interim auth.json), the token key, and the admin; mounts the
// auth API; wraps the whole HTTP mux in the auth middleware; and gives the
// gRPC server and the UDP pusher their guard. With auth off none of that is
// built and the request paths carry no auth code.
package server
