package chaos

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/transport/clustergrpc"
)

// ForgedKey is the instance every forged peer call tries to plant.
const ForgedKey = "chaos-svc-forged/10.66.6.6:6666"

// AuthProbe is the outcome of one forged cluster call (I10).
type AuthProbe struct {
	Name string
	Want codes.Code
	Got  codes.Code
	Err  string
}

// OK reports whether the call was refused with the expected code.
func (p AuthProbe) OK() bool { return p.Got == p.Want }

func (p AuthProbe) String() string {
	return fmt.Sprintf("%s: want %s, got %s (%s)", p.Name, p.Want, p.Got, p.Err)
}

// forgedSync is a sync batch that would plant ForgedKey with a version an
// hour ahead, winning any merge if it were ever applied.
func forgedSync(origin string) []byte {
	svc, inst, _ := strings.Cut(ForgedKey, "/")
	host, port, _ := net.SplitHostPort(inst)
	p, _ := strconv.Atoi(port)
	req := &clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{{
		Key: &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: svc},
		Records: []*clusterpb.Record{{
			Instance: &clusterpb.Instance{Ip: host, Port: int32(p), Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"},
			Stamp:    uint64(hlc.Make(time.Now().Add(time.Hour).UnixMilli(), 0)),
			Origin:   origin,
		}},
	}}}}}
	b, _ := proto.Marshal(req)
	return b
}

// ProbeAuth sends forged and unsigned peer calls to target's cluster port,
// pretending to be from (a member) or an outsider, and reports how each was
// answered. secret is the real cluster secret: it is used only to build
// the captured-and-replayed, stale, misdirected and non-member envelopes an
// attacker could hold, never for a call that should be accepted with a
// state change.
func ProbeAuth(ctx context.Context, target, from, other, outsider, secret string) []AuthProbe {
	var out []AuthProbe
	addr, _ := clustergrpc.ClusterAddr(target, clustergrpc.DefaultPortOffset)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return []AuthProbe{{Name: "dial", Want: codes.OK, Got: codes.Unknown, Err: err.Error()}}
	}
	defer cc.Close()
	stub := clusterpb.NewClusterClient(cc)
	call := func(name string, want codes.Code, env *clusterpb.Envelope) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := stub.Call(cctx, env)
		p := AuthProbe{Name: name, Want: want, Got: status.Code(err)}
		if err != nil {
			p.Err = status.Convert(err).Message()
		}
		out = append(out, p)
	}

	// 1. The real cluster client with a wrong secret.
	wrong := make([]byte, 48)
	_, _ = rand.Read(wrong)
	ws, err := clusterauth.New([]byte(fmt.Sprintf("%x", wrong)), from)
	if err == nil {
		cl := clustergrpc.NewClient(clustergrpc.ClientConfig{Signer: ws, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var req clusterpb.Request
		_ = proto.Unmarshal(forgedSync(from), &req)
		_, err = cl.Call(cctx, target, &req)
		cancel()
		_ = cl.Close()
		p := AuthProbe{Name: "wrong secret (clustergrpc client)", Want: codes.Unauthenticated, Got: status.Code(err)}
		if err != nil {
			p.Err = err.Error()
		}
		out = append(out, p)
	}

	// 2. Unsigned: the insecure signer sets no MAC.
	call("unsigned envelope", codes.Unauthenticated, clusterauth.Insecure(from).Sign(target, forgedSync(from)))

	good, err := clusterauth.New([]byte(secret), from)
	if err != nil {
		return append(out, AuthProbe{Name: "signer", Err: err.Error(), Got: codes.Unknown})
	}
	// 3. A correctly signed message altered in transit.
	env := good.Sign(target, forgedSync(from))
	env.Body = append([]byte(nil), env.Body...)
	env.Body[len(env.Body)-1] ^= 1
	call("tampered body", codes.Unauthenticated, env)

	// 4. A stale capture (signed 5 minutes ago).
	old, _ := clusterauth.New([]byte(secret), from, clusterauth.WithClock(func() time.Time { return time.Now().Add(-5 * time.Minute) }))
	call("stale timestamp", codes.Unauthenticated, old.Sign(target, forgedSync(from)))

	// 5. A capture addressed to another member.
	call("misdirected envelope", codes.Unauthenticated, good.Sign(other, forgedSync(from)))

	// 6. A replay: a harmless probe is accepted once, the identical
	// envelope a second time must not be.
	probe, _ := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}})
	penv := good.Sign(target, probe)
	call("original probe (accepted)", codes.OK, penv)
	call("replayed probe", codes.Unauthenticated, penv)

	// 7. A holder of the secret that is not a member.
	ns, _ := clusterauth.New([]byte(secret), outsider)
	call("non-member sender", codes.PermissionDenied, ns.Sign(target, forgedSync(outsider)))
	return out
}
