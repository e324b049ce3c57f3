// Package httpapi serves the Nacos v1 naming HTTP API (/nacos/v1/ns/...)
// that unmodified Nacos 1.x/2.x clients use: instance and service CRUD,
// cluster settings (health checkers of persistent instances), heartbeats,
// instance lists with UDP push subscription, catalog and operator endpoints.
//
// It is an adapter only: it decodes and validates parameters, builds a
// registry.Op for writes and hands it to a registry.Writer (which may hand it
// on to the key's owner in a cluster), and answers reads from the local
// store. Every error is a 4xx with a message a person understands; nothing is
// written before a request has been fully validated.
//
// Client auth is not in this package: internal/nacos/authapi's middleware
// runs before it, parses the parameters with ReadParams (leaving them in
// r.Form, which the handlers then use, so that what was authorized is what
// is acted on), and Config.Identity tells push subscriptions who made them.
package httpapi
