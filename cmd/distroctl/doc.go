// Distroctl is the command-line client for distro, the Nacos-compatible
// service registry. It speaks the Nacos naming HTTP v1 API through
// internal/client, so it works against distro and against real Nacos
// servers alike, and it fails over between the servers given in --server
// the way Nacos clients do.
//
// Usage:
//
//	distroctl [--server host:port,...] [--namespace NS] [--timeout 5s] [--json] COMMAND
//
// Commands:
//
//	instance register    register (or replace) one instance
//	instance deregister  remove one instance
//	instance list        list a service's instances
//	service list         list the services of a group
//	status               per-server status, readiness and counts
//	members              cluster members as one server sees them
//	version              print the version
//
// The server list comes from --server, else the DISTRO_SERVER environment
// variable, else 127.0.0.1:8848. Errors go to standard error as one line
// ("distroctl: ...") and make the exit status 1. See docs/distroctl.md.
package main
