// Package udppush pushes service changes to Nacos v1 (HTTP) clients over UDP,
// the 1.x push protocol that Nacos 2.x still serves to HTTP subscribers.
//
// A client that lists a service with GET /nacos/v1/ns/instance/list and a
// udpPort becomes a subscriber: (service key, clusters string, address). When
// the service changes, every subscriber receives
//
//	{"type":"dom","data":"<ServiceInfo JSON as a string>","lastRefTime":<ack id>}
//
// gzip-compressed when the packet is 1 KiB or more, and answers with
// {"type":"push-ack","lastRefTime":<ack id>} from the address it was sent to.
// Push only shortens the time until a client sees a change; polling every
// cacheMillis stays the primary mechanism, so every failure here (a lost
// packet, a packet too large for UDP or for the client's read buffer) simply
// leaves the client to its next poll. Packets are kept within one datagram
// (65507 bytes); nacos-sdk-go reads pushes into a 4024-byte buffer, so larger
// ones are not sent to Go clients at all (they are counted as failed).
//
// # Scheduling
//
// Store change events only mark the service dirty. A service is pushed
// MergeWindow after its first change in a window; later changes in the
// window ride along (the deadline is kept, never postponed, so a busy
// service is still pushed at a steady rate). Because every deadline is
// "first change + MergeWindow", the dirty queue is already in deadline order
// and is a plain FIFO; unacked pushes likewise wait in a FIFO ordered by ack
// deadline. There is no goroutine or timer per subscriber or per service.
//
// A push round renders the service once per distinct clusters string (the
// rendering is cached on the store view, so HTTP list calls share it),
// wraps and compresses it once, and sends the same bytes with the same ack id
// to every subscriber of that clusters string. A subscriber has at most one
// push awaiting its ack: a newer push supersedes the older one, so stale data
// is never retransmitted and the pending table never holds more entries than
// there are subscribers (at most MaxSubscribers).
//
// Ack ids are Unix microseconds made strictly increasing. Nacos uses
// nanoseconds of its JVM's monotonic clock; wall-clock nanoseconds would
// exceed 2^53, and the Node client, which parses the id as a double and
// echoes it back as a number, would return a different value.
//
// # Auth
//
// With Config.Guard set (client auth on), each subscriber remembers who
// subscribed; before a push, a subscriber whose permission was not checked
// since the Guard's epoch last moved is checked again and dropped if it may
// no longer read the service. Nothing is checked while permissions do not
// change.
//
// # Goroutines
//
// Run owns two goroutines: the dispatcher (itself), which on each tick of
// MergeWindow/2 pushes due services, resends or gives up unacked pushes, and
// every few seconds drops subscribers idle for SubscriberTTL; and the ack
// reader, which reads the socket and settles pending pushes. Run closes the
// socket and waits for the reader when its context ends.
//
// # Concurrency
//
// Subscribe, Stats, SubscriberCount and LocalAddr are safe for concurrent
// use, including while Run runs. The store callback runs on the writer's
// goroutine; it takes one short mutex (which no sending or sweeping path
// holds) and appends the key to the dirty queue, so it never blocks a write
// for long. Sends happen outside all locks. Lock order: the subscriber mutex
// before the dirty-queue mutex; the store callback takes only the latter.
package udppush
