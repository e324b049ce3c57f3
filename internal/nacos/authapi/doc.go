// Package authapi is the Nacos-facing side of client authentication: the
// login and user/role/permission endpoints (/nacos/v1/auth/...), the HTTP
// middleware that authenticates and authorizes every request before the
// handlers see it, and the gRPC Guard that does the same for Nacos 2
// requests. Decisions are internal/auth's; this package maps requests to
// resources and actions the way Nacos's @Secured annotations do, and answers
// refusals the way Nacos does.
//
// # HTTP
//
// Middleware wraps the server's whole mux. For each request it finds the
// route pattern that will serve it and that pattern's rule: open (health
// probes, login), authenticated, global admin (the operator and management
// endpoints), or a naming read or write on the resource the parameters name.
// A pattern without a rule is refused (fail closed), and the server
// refuses to start with a registered route that has none (Unruled). A
// naming request whose service key does not parse is answered 400 here:
// with no resource there is nothing to decide, and no undecided request
// reaches a handler. The caller is
// identified, in Nacos's order, by "Authorization: Bearer <token>", the
// accessToken parameter, or username and password parameters (the npm
// client sends those on every request; HTTP Basic is read the same way).
// Parameters are parsed once, with httpapi.ReadParams, and handed on in
// r.Form, so the handlers act on exactly what was authorized. A refusal is
// HTTP 403 with Spring's error JSON and Nacos's message ("user not found!",
// "token expired!", "authorization failed!", ...); throttled password
// checks are 429.
//
// # gRPC
//
// GRPC implements grpcapi.Guard: the accessToken (or Authorization, or
// username and password) of the request's metadata headers identifies the
// caller; instance requests need write, queries, subscriptions and service
// lists need read; a service key that does not parse is INVALID_PARAM
// (400). A refused request is answered with its own response type
// carrying errorCode 403, as Nacos does (an ErrorResponse would make the
// SDKs retry and switch servers). Pushes ask MayRead again whenever the
// Authority's epoch moved.
package authapi
