// Package server is distrod's composition root: it builds the store, the
// write path, push, the HTTP API and (in a cluster) the Distro engine from a
// config.Config, starts their loops and listeners, and shuts them down in
// order. It holds no protocol logic of its own.
package server
