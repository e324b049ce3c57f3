// Package console is distrod's web console: server-rendered pages
// (html/template, embedded with the binary) for seeing and operating the
// registry in a browser, at /ui/ and at /nacos/ where a Nacos user looks
// for it.
//
// Pages: namespaces with an overview and a chart of the node's write and
// expiry rates; the service list (search, paging, instance and healthy
// counts, owner); a service's detail (settings, clusters, instances with
// their last heartbeat or holding connection, subscribers on this node);
// and the cluster (members as this node's probes see them, the services
// each owns, sync queues and latency, verification rounds and repairs).
// Pages that show live state poll a fragment every second (htmx, vendored
// under static/ with its licence); the server answers 204 when nothing
// changed, so an idle page costs one small request per second.
//
// Changes (weight, enabled, metadata, deregistration, service settings,
// service deletion) are registry.Ops handed to the same registry.Writer the
// client APIs use: in a cluster they go to the owner and replicate like any
// client write. Without client authentication the console is read-only
// unless distrod runs with --console-edit (and then answers only Hosts
// that DNS rebinding cannot fake: Config.CheckHost); an Authenticator adds a login
// page and per-service permissions. Unsafe requests must be same-origin
// (http.CrossOriginProtection), every page sends a strict
// Content-Security-Policy (no inline script or style), and everything shown
// is escaped by html/template: names, metadata and client addresses are
// user input.
//
// The console works without JavaScript (forms post and redirect); JavaScript
// only adds the live updates.
package console
