package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrUnavailable is matched (with errors.Is) by the error of a call on which
// no server gave a usable answer: each server tried failed with a transport
// error or a 5xx, or the context ended before one answered. A program can
// tell "the cluster is down" apart from "the cluster said no" (*APIError
// with a 4xx) this way.
var ErrUnavailable = errors.New("no server available")

// APIError is a non-2xx answer from a server. On calls with failover a 4xx
// is the cluster's final word and is returned at once, while a 5xx only
// surfaces wrapped in an ErrUnavailable error once every server failed.
// ServerStatus and Readyz ask one server and return any status directly.
type APIError struct {
	// Status is the HTTP status code (or, for answers that wrap a result
	// code in a 200, that code).
	Status int
	// Message is the server's error text on one line, e.g. "Param
	// 'serviceName' is required.", or the status text if the body was empty.
	Message string
	// Server is the host:port that answered.
	Server string
}

// Error returns "<status> from <server>: <message>", one human line.
func (e *APIError) Error() string {
	return fmt.Sprintf("%d from %s: %s", e.Status, e.Server, e.Message)
}

// transportError is a failed exchange with one server: no answer, or an
// answer that could not be read.
type transportError struct {
	server string
	err    error
}

func (e *transportError) Error() string { return e.server + ": " + describe(e.err) }
func (e *transportError) Unwrap() error { return e.err }

// describe shortens Go's transport errors, which repeat the URL and the
// address, to the part a person needs ("connect: connection refused").
func describe(err error) string {
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	if ue != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// retryable reports whether another server might answer better: true for
// transport errors and 5xx answers, false for 4xx and decoding errors.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	return errors.As(err, &ae) && ae.Status >= 500
}

// failoverError collects the per-server failures of one call.
type failoverError struct {
	errs  []error // one per server tried, in order
	total int     // number of configured servers
}

func (e *failoverError) Error() string {
	if len(e.errs) == 1 && e.total == 1 {
		return e.errs[0].Error()
	}
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	if len(e.errs) == e.total {
		return fmt.Sprintf("all %d servers failed: %s", e.total, strings.Join(parts, "; "))
	}
	return fmt.Sprintf("%d of %d servers failed: %s", len(e.errs), e.total, strings.Join(parts, "; "))
}

func (e *failoverError) Is(target error) bool { return target == ErrUnavailable }
func (e *failoverError) Unwrap() []error      { return e.errs }
