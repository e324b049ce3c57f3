package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Auth API paths.
const (
	pathLogin       = contextPath + "/v1/auth/login"
	pathUsers       = contextPath + "/v1/auth/users"
	pathRoles       = contextPath + "/v1/auth/roles"
	pathPermissions = contextPath + "/v1/auth/permissions"
)

// WithCredentials makes the client log in with username and password
// (POST /nacos/v1/auth/login) and send the access token with every call,
// as the Nacos SDKs do. The token is reused until shortly before its TTL
// ends. A server with auth off answers the login with an empty token, and
// calls then go without one.
func WithCredentials(username, password string) Option {
	return func(c *Client) { c.username, c.password = username, password }
}

// Session is the answer of a login.
type Session struct {
	AccessToken string `json:"accessToken"`
	TokenTTL    int64  `json:"tokenTtl"`
	GlobalAdmin bool   `json:"globalAdmin"`
	Username    string `json:"username"`
}

// Login logs in with the client's credentials on any server and returns
// the session (the token is also kept for later calls).
func (c *Client) Login(ctx context.Context) (Session, error) {
	if c.username == "" {
		return Session{}, errors.New("login: no credentials (WithCredentials)")
	}
	var failed []error
	for _, srv := range c.order() {
		s, err := c.login(ctx, srv)
		if err == nil {
			return s, nil
		}
		if !retryable(err) {
			return Session{}, err
		}
		failed = append(failed, err)
	}
	return Session{}, &failoverError{errs: failed, total: len(c.servers)}
}

func (c *Client) login(ctx context.Context, server string) (Session, error) {
	body, err := c.once(ctx, server, http.MethodPost, pathLogin, url.Values{"username": {c.username}, "password": {c.password}})
	if err != nil {
		return Session{}, err
	}
	var s Session
	if err := decodeJSON(body, &s); err != nil {
		return Session{}, &APIError{Status: http.StatusOK, Message: "login answer is not JSON: " + err.Error(), Server: server}
	}
	ttl := time.Duration(s.TokenTTL) * time.Second
	c.tokMu.Lock()
	// Renew a tenth of the TTL early, as the SDKs do.
	c.tok, c.tokUntil = s.AccessToken, time.Now().Add(ttl-ttl/10)
	c.tokMu.Unlock()
	return s, nil
}

// token returns the cached token, logging in on server when there is none
// or it is about to expire. fresh reports that it was just obtained.
func (c *Client) token(ctx context.Context, server string) (tok string, fresh bool, err error) {
	c.tokMu.Lock()
	tok, until := c.tok, c.tokUntil
	c.tokMu.Unlock()
	if until.After(time.Now()) {
		return tok, false, nil
	}
	s, err := c.login(ctx, server)
	return s.AccessToken, true, err
}

// authed is once with the client's token, if it has credentials.
func (c *Client) authed(ctx context.Context, server, method, path string, params url.Values) ([]byte, error) {
	if c.username == "" {
		return c.once(ctx, server, method, path, params)
	}
	tok, fresh, err := c.token(ctx, server)
	if err != nil {
		return nil, err
	}
	body, err := c.once(ctx, server, method, path, params, tok)
	var ae *APIError
	if !fresh && errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		c.tokMu.Lock()
		c.tokUntil = time.Time{}
		c.tokMu.Unlock()
		if tok, _, err = c.token(ctx, server); err != nil {
			return nil, err
		}
		return c.once(ctx, server, method, path, params, tok)
	}
	return body, err
}

// Page is one page of a Nacos auth listing.
type Page[T any] struct {
	TotalCount     int `json:"totalCount"`
	PageNumber     int `json:"pageNumber"`
	PagesAvailable int `json:"pagesAvailable"`
	PageItems      []T `json:"pageItems"`
}

// User is a user as listed (never with a password).
type User struct {
	Username string `json:"username"`
}

// RoleBinding and Permission look like auth.RoleBinding and
// auth.Permission, on purpose not the same types: these are the wire
// shapes of the Nacos auth API (what any Nacos server answers), those the
// server's stored state, and the two may drift apart (the server already
// answers roles with a type of its own). The client library uses only the
// standard library, and importing internal/auth would hand bcrypt, JWT and
// the auth store to every program built on it. TestWireShapes checks that
// the JSON of both agrees.

// RoleBinding is a role given to a user.
type RoleBinding struct {
	Role     string `json:"role"`
	Username string `json:"username"`
}

// Permission is an action on a resource pattern granted to a role.
type Permission struct {
	Role     string `json:"role"`
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

func pageValues(pageNo, pageSize int) url.Values {
	return url.Values{"pageNo": {strconv.Itoa(pageNo)}, "pageSize": {strconv.Itoa(pageSize)}, "search": {"accurate"}}
}

func getPage[T any](ctx context.Context, c *Client, path string, v url.Values) (Page[T], error) {
	body, srv, err := c.call(ctx, http.MethodGet, path, v)
	if err != nil {
		return Page[T]{}, err
	}
	var p Page[T]
	if err := decodeJSON(body, &p); err != nil {
		return Page[T]{}, &APIError{Status: http.StatusOK, Message: "answer is not a page: " + err.Error(), Server: srv}
	}
	return p, nil
}

// Users lists one page of users (GET /nacos/v1/auth/users).
func (c *Client) Users(ctx context.Context, pageNo, pageSize int) (Page[User], error) {
	return getPage[User](ctx, c, pathUsers, pageValues(pageNo, pageSize))
}

// CreateUser creates a user (POST /nacos/v1/auth/users).
func (c *Client) CreateUser(ctx context.Context, username, password string) error {
	return c.change(ctx, http.MethodPost, pathUsers, url.Values{"username": {username}, "password": {password}})
}

// DeleteUser deletes a user (DELETE /nacos/v1/auth/users).
func (c *Client) DeleteUser(ctx context.Context, username string) error {
	return c.change(ctx, http.MethodDelete, pathUsers, url.Values{"username": {username}})
}

// SetPassword changes a user's password (PUT /nacos/v1/auth/users): one's
// own, or anyone's as a global admin.
func (c *Client) SetPassword(ctx context.Context, username, newPassword string) error {
	return c.change(ctx, http.MethodPut, pathUsers, url.Values{"username": {username}, "newPassword": {newPassword}})
}

// Roles lists one page of role bindings, of one user if username is set.
func (c *Client) Roles(ctx context.Context, username string, pageNo, pageSize int) (Page[RoleBinding], error) {
	v := pageValues(pageNo, pageSize)
	if username != "" {
		v.Set("username", username)
	}
	return getPage[RoleBinding](ctx, c, pathRoles, v)
}

// AddRole gives username the role (POST /nacos/v1/auth/roles).
func (c *Client) AddRole(ctx context.Context, role, username string) error {
	return c.change(ctx, http.MethodPost, pathRoles, url.Values{"role": {role}, "username": {username}})
}

// DeleteRole takes the role from username, or deletes the role (with its
// permissions) when username is empty.
func (c *Client) DeleteRole(ctx context.Context, role, username string) error {
	v := url.Values{"role": {role}}
	if username != "" {
		v.Set("username", username)
	}
	return c.change(ctx, http.MethodDelete, pathRoles, v)
}

// Permissions lists one page of permissions, of one role if role is set.
func (c *Client) Permissions(ctx context.Context, role string, pageNo, pageSize int) (Page[Permission], error) {
	v := pageValues(pageNo, pageSize)
	if role != "" {
		v.Set("role", role)
	}
	return getPage[Permission](ctx, c, pathPermissions, v)
}

// AddPermission grants role the action ("r", "w" or "rw") on resources
// matching resource ("namespace:group:naming/service", '*' for any run).
func (c *Client) AddPermission(ctx context.Context, role, resource, action string) error {
	return c.change(ctx, http.MethodPost, pathPermissions, url.Values{"role": {role}, "resource": {resource}, "action": {action}})
}

// DeletePermission revokes a permission.
func (c *Client) DeletePermission(ctx context.Context, role, resource, action string) error {
	return c.change(ctx, http.MethodDelete, pathPermissions, url.Values{"role": {role}, "resource": {resource}, "action": {action}})
}

// change sends a management write and checks Nacos's RestResult answer.
func (c *Client) change(ctx context.Context, method, path string, v url.Values) error {
	body, srv, err := c.call(ctx, method, path, v)
	if err != nil {
		return err
	}
	var r struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return &APIError{Status: http.StatusOK, Message: fmt.Sprintf("unexpected answer: %.80s", body), Server: srv}
	}
	if r.Code != 0 && r.Code != http.StatusOK {
		return &APIError{Status: r.Code, Message: r.Message, Server: srv}
	}
	return nil
}
