// Package auth authenticates and authorizes Nacos clients: users with
// bcrypt-hashed passwords, roles bound to users, and permissions (a
// resource pattern and an action) granted to roles, with the semantics of
// Nacos's built-in auth plugin; signed, expiring JWT access tokens; login
// throttling.
//
// # Model
//
// State is the whole auth data set (users, role bindings, permissions).
// It changes only through Change commands applied by State.Apply, a pure,
// deterministic function: a Change carries everything it needs (the
// bcrypt hash, the creation time), so a replicated log of Changes (the CP
// store of a cluster) yields the same State on every node. A Store keeps the
// State durable and tells watchers about every new one: distrod uses the
// CP (Raft) store of internal/authcp, standalone and in a cluster alike;
// FileStore (one JSON file, written atomically) was the interim store, and
// its file is what an upgraded node seeds the replicated store with.
//
// # Decisions
//
// A request for resource "namespace:group:naming/service" with action r or
// w is allowed when the user has the global admin role (ROLE_ADMIN), or one
// of its roles has a permission whose action contains the action ("rw"
// contains both) and whose resource pattern matches the resource. In a
// pattern '*' matches any run of characters (Nacos turns '*' into the
// regular expression ".*"); every other character matches itself (Nacos
// would also read '.' and other regular-expression syntax). A Resource is
// kept in its parts and a pattern is split the same way (see pattern), so
// that a '*' never runs across a ':' into another namespace or group:
// names may themselves contain ':'. User, role, permission and namespace
// management (Nacos's "console/" resources) is for global admins only; the
// HTTP rules of internal/nacos/authapi say so.
//
// Authority serves the decisions from an immutable index of the current
// State (swapped atomically on every change), so a check takes no lock and
// allocates nothing. Epoch changes with every State, so holders of earlier
// decisions (push subscriptions) know when to check again.
//
// # Tokens and passwords
//
// Tokens are HS256 JWTs (subject = user name, iat, exp) signed with the
// token key. Verified tokens are cached by their SHA-256 (no token is kept in
// memory as is, and the lookup compares no secret byte by byte), so a request
// with a known token costs a hash and a map lookup. A token is refused once
// it expired, when its user no longer exists, or when it was issued before
// the user was (re)created. Passwords are checked with bcrypt (constant
// time), and against a fixed dummy hash for unknown users so that timing does
// not tell which user names exist. Clients that send username and password
// with every request (the npm client) are served from a cache of verified
// credentials keyed by an HMAC of name and password under a per-process key.
//
// Failed password checks are throttled per user name and per source
// address (token buckets); a throttled attempt is refused without checking
// the password, so a guessing attack costs neither CPU nor a lock-out of
// clients whose credentials are already verified. No token or password is
// ever logged.
package auth
