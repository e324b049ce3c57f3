package console

import (
	"context"
	"errors"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// Principal is the user a console request acts for.
type Principal struct {
	// Name is the user name; empty when authentication is off.
	Name string
	// Admin marks a global administrator.
	Admin bool
}

// ErrBadCredentials is what Login answers for a wrong user or password.
var ErrBadCredentials = errors.New("wrong username or password")

// Authenticator is the console's seam to client authentication: it checks
// logins, turns session tokens back into principals and decides what a
// principal may see and change. Implementations must be safe for concurrent
// use.
type Authenticator interface {
	// Enabled reports whether users must log in. When it is false the
	// console never shows its login page and every request acts for the
	// zero Principal.
	Enabled() bool
	// Login checks a user name and password, remote being the client's
	// address (for rate limits), and returns a session token with its
	// lifetime. A wrong user or password gives ErrBadCredentials; other
	// errors (such as a rate limit) are shown to the user as they are.
	Login(ctx context.Context, username, password, remote string) (token string, ttl time.Duration, err error)
	// Verify returns the principal a token from Login stands for, or an
	// error for a token that is invalid or expired.
	Verify(token string) (Principal, error)
	// CanRead and CanWrite report whether p may see, or change, service k.
	CanRead(p Principal, k model.ServiceKey) bool
	CanWrite(p Principal, k model.ServiceKey) bool
}

// Open is the Authenticator of a node without client authentication:
// everyone may read, and may change things only when the operator allowed
// edits (--console-edit).
type Open struct {
	// AllowEdit permits changes from the console.
	AllowEdit bool
}

var _ Authenticator = Open{}

// Enabled implements Authenticator: no login.
func (Open) Enabled() bool { return false }

// Login implements Authenticator; it is never called while Enabled is false.
func (Open) Login(context.Context, string, string, string) (string, time.Duration, error) {
	return "", 0, errors.New("authentication is off")
}

// Verify implements Authenticator.
func (Open) Verify(string) (Principal, error) { return Principal{}, nil }

// CanRead implements Authenticator: everything is readable.
func (Open) CanRead(Principal, model.ServiceKey) bool { return true }

// CanWrite implements Authenticator.
func (o Open) CanWrite(Principal, model.ServiceKey) bool { return o.AllowEdit }
