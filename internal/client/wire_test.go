package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/distro-registry/distro/internal/auth"
)

// TestWireShapes: the client's role and permission types read exactly what
// the server's types write (the client keeps its own types so that it need
// not import the server's auth package; see RoleBinding).
func TestWireShapes(t *testing.T) {
	for _, c := range []struct{ server, client any }{
		{auth.RoleBinding{Role: "ops", Username: "alice"}, &RoleBinding{}},
		{auth.Permission{Role: "ops", Resource: "dev:*:*", Action: "rw"}, &Permission{}},
	} {
		b, err := json.Marshal(c.server)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, c.client); err != nil {
			t.Fatal(err)
		}
		back, _ := json.Marshal(c.client)
		var want, got map[string]any
		_ = json.Unmarshal(b, &want)
		_ = json.Unmarshal(back, &got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%T: server writes %s, client reads back %s", c.server, b, back)
		}
	}
}
