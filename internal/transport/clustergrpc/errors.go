package clustergrpc

import (
	"errors"
	"syscall"
)

// Errors reported by the Client.
var (
	// ErrClosed reports use of a Client after Close.
	ErrClosed = errors.New("clustergrpc: client closed")
	// ErrWrongPeer reports an authentic response signed by a member other
	// than the one called: the address reached a different node.
	ErrWrongPeer = errors.New("clustergrpc: response from a different member")
	// ErrProtocol reports a well-authenticated message that breaks the
	// protocol: a missing or unexpected kind, or snapshot chunks out of
	// order or ending without the last one.
	ErrProtocol = errors.New("clustergrpc: protocol violation")
	// ErrChunkTooLarge is returned by a snapshot send func for a chunk
	// above ServerConfig.MaxChunkBytes.
	ErrChunkTooLarge = errors.New("clustergrpc: snapshot chunk too large")
)

// IsRefused reports whether err means the peer actively refused the
// connection (nothing listens on its cluster port): the peer is down, not
// merely slow. It is errors.Is(err, syscall.ECONNREFUSED).
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// refusedError marks a gRPC error caused by a refused connection, keeping
// the gRPC status reachable (status.Code still works) while also matching
// syscall.ECONNREFUSED.
type refusedError struct{ err error }

func (e *refusedError) Error() string   { return e.err.Error() }
func (e *refusedError) Unwrap() []error { return []error{e.err, syscall.ECONNREFUSED} }
