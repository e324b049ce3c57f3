// Package grpcapi serves the Nacos 2 client gRPC API (HTTP port + 1000)
// that unmodified Nacos 2.x clients (nacos-sdk-go v2, Java 2.x) use for
// ephemeral instances, subscriptions and pushes. See docs/grpc-api.md.
//
// # Wire
//
// Two services from api/nacospb: unary /Request/request and bidirectional
// /BiRequestStream/requestBiStream. Every message is a Payload whose
// metadata.type names a Nacos request or response class and whose body is
// that object's JSON (DecodePayload, EncodePayload). Unary requests are
// always answered with a Payload: the typed response, or an ErrorResponse
// whose errorCode is 300 (server starting), 301 (connection not registered:
// the client reconnects), 302 (no handler), 400 (invalid request) or 500.
//
// # Connections
//
// A grpc stats.Handler gives each transport (HTTP/2) connection a record
// and the Nacos id <millis>_<remoteIp>_<remotePort>; every RPC on the
// transport finds it in its context. ServerCheckRequest is answered on any
// transport with that id. ConnectionSetupRequest on the bi-stream registers
// the connection; until then (and after teardown) every other unary request
// gets 301. The connection ends when its stream or its transport ends, when
// it does not answer a ClientDetectionRequest (sent after IdleTimeout
// without traffic) within ProbeTimeout, when it leaves a push
// unacknowledged through every resend, or when it is still open
// ResetTimeout after an operator's ConnectResetRequest (Reset, Mount).
// Ending it removes its subscriptions
// and, through ConnRegistry.DropConn, every instance it registered, which
// pushes the change to that service's subscribers.
//
// Instances registered on a connection are written through the
// registry.Writer with Op.Conn set, so they are owned by this node and
// replicated by Distro like any record; peers drop them a lease after this
// node becomes unreachable. PersistentInstanceRequest is not
// connection-held: it is written like an HTTP register.
//
// # Push
//
// Store change events only queue the key of a subscribed service. One
// dispatcher goroutine pushes a service MergeWindow after its first change
// (later changes ride along; it sleeps on a timer for the earliest such
// deadline, so a push does not wait for its next tick), rendering its
// ServiceInfo once per distinct clusters filter (cached per store
// revision) and queuing the same NotifySubscriberRequest, with one fresh
// request id, to every such subscriber. A subscription has at most one push awaiting its
// NotifySubscriberResponse: a newer push supersedes it. Unacknowledged
// pushes wait in one list ordered by deadline and are resent every
// AckTimeout, MaxRetries times, before the connection is dropped. There is
// no goroutine or timer per subscriber or per push. lastRefTime strictly
// increases per service across pushes (clients drop anything older than
// what they hold).
//
// # Auth
//
// With Config.Guard set (client auth on), every naming request of a set-up
// connection is authorized before its handler runs, from the metadata
// headers (accessToken); a refusal is answered with the request's own
// response type and errorCode 403, as Nacos does. Subscriptions remember who
// made them, and a push re-checks a subscriber when the Guard's epoch moved
// since its last check (permissions changed): one that may no longer read
// the service loses the subscription.
//
// # Goroutines
//
// Serve runs the gRPC server, the dispatcher (pushes, resends, idle
// probes), and a one-shot sweep of instances a previous process left once
// the node is ready. gRPC runs a goroutine per unary request and per
// stream (plus its reader, writer and keepalive goroutines per
// transport). What the server queues for a stream is sent by a sender
// goroutine of the stream's own, which runs only while its outbox holds
// something (a stream needs a single sender, and an idle connection then
// costs no goroutine of ours); a slow client never blocks the dispatcher:
// its bounded outbox overflows and the client is dropped instead.
//
// # Memory and encoding
//
// The accepted sockets go to grpc-go as they are, not wrapped, so that it
// reads with a buffer borrowed only while data is waiting. A connection's
// sets (subscriptions, services with its instances, pending pushes) are
// slices while they hold a few entries (smallMap), and equal labels are
// shared; grpc-go's transport is most of what a connected client costs
// (docs/profiles.md). The hot request
// bodies are decoded by hand (decode.go); answers are encoded by the codec
// straight from their parts (reply.go), so a ServiceInfo rendered once per
// revision is copied only into the transport's buffer; a push is encoded
// once for all of its subscribers (encodedMsg).
//
// # Locks
//
// conn.opMu (a connection's writes versus its teardown), then Server.mu
// (subscriptions, pending pushes, probes), then Server.qmu (dirty queue),
// then an outbox's lock. Server.connMu (the transport table) is never held
// with another. The store callback takes only qmu; no lock is held while
// the store or the Writer is called, except opMu, which store callbacks
// never take.
package grpcapi
