// Package render encodes registry views in the JSON shapes Nacos clients
// expect (ServiceInfo for v1 HTTP, UDP push and v2 gRPC). It is pure and
// allocation-conscious: list responses are encoded by appending to a byte
// slice, and callers cache the result per service revision.
package render
