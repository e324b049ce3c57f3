package authcp_test

import (
	"errors"
	"testing"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/authcp"
	"github.com/distro-registry/distro/internal/model"
)

// FuzzDecodeCommand: no input panics the decoder or the state machine;
// refusals wrap model.ErrInvalid; whatever is accepted applies to a small
// State without changing it in place and leaves a valid State.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []auth.Change{{Op: auth.OpCreateUser, Username: "x", Hash: "$2a$04$z", At: 1}, {Op: auth.OpDeleteUser, Username: "u"},
		{Op: auth.OpAddPermission, Role: "r", Resource: "a:*:*", Action: "rw"}, {Op: auth.OpBootstrapAdmin, Username: "u", Hash: "$2a$04$w"}} {
		b, _ := auth.EncodeChange(c)
		f.Add(append([]byte{'c'}, b...))
	}
	b, _ := auth.EncodeState(&auth.State{Users: []auth.User{{Name: "old", Hash: "$2a$04$o"}}})
	f.Add(append([]byte{'s'}, b...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := authcp.DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("decode error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if (cmd.Change == nil) == (cmd.Seed == nil) {
			t.Fatal("decoded command has not exactly one part")
		}
		s := authcp.New()
		m := s.Extension()
		if err := m.Apply(data); err != nil {
			return
		}
		enc, err := auth.EncodeState(s.State())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.DecodeState(enc); err != nil {
			t.Fatalf("applied %q gave an invalid state: %v", data, err)
		}
	})
}
