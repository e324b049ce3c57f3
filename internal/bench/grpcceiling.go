package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
)

// CaptureMethodGRPC is the "method" under which GRPCDriver captures the
// answer to each Nacos request type: CaptureFile(CaptureMethodGRPC,
// "/"+requestType). The file holds the response type, a newline, and the
// response body.
const CaptureMethodGRPC = "GRPC"

// GRPCReply is one captured answer: the response type and its JSON body.
type GRPCReply struct {
	Type string
	Body []byte
}

// GRPCCeiling is the gRPC counterpart of Ceiling: a server of the same
// Nacos 2 proto, on the same transport options as distrod's client API
// (grpcapi.TransportOptions), whose unary handler answers every request
// with the Payload distrod gave for that request type (captured during the
// distrod run) and does no work of its own. Its bi-stream accepts a
// client's messages and sends nothing. Run on the same core as distrod
// with the same load, it shows how much of the cost of a v2 request is
// gRPC itself.
type GRPCCeiling struct {
	routes map[string]*nacospb.Payload
	def    *nacospb.Payload
}

// NewGRPCCeiling answers each request type in routes with its reply; other
// types get an ErrorResponse (errorCode 302, as a server without a handler
// answers).
func NewGRPCCeiling(routes map[string]GRPCReply) *GRPCCeiling {
	c := &GRPCCeiling{routes: map[string]*nacospb.Payload{},
		def: grpcapi.EncodePayload(grpcapi.TypeErrorResponse,
			[]byte(`{"resultCode":500,"errorCode":302,"success":false,"message":"no captured answer","requestId":""}`))}
	for typ, r := range routes {
		c.routes[typ] = grpcapi.EncodePayload(r.Type, r.Body)
	}
	return c
}

// Register adds the ceiling's services to s.
func (c *GRPCCeiling) Register(s *grpc.Server) {
	nacospb.RegisterRequestServer(s, ceilingRequest{c: c})
	nacospb.RegisterBiRequestStreamServer(s, ceilingStream{})
}

// NewServer returns a gRPC server with distrod's transport options serving
// the ceiling.
func (c *GRPCCeiling) NewServer() *grpc.Server {
	s := grpc.NewServer(grpcapi.TransportOptions(0)...)
	c.Register(s)
	return s
}

// Types returns the request types with a captured answer.
func (c *GRPCCeiling) Types() []string {
	var out []string
	for k := range c.routes {
		out = append(out, k)
	}
	return out
}

type ceilingRequest struct {
	nacospb.UnimplementedRequestServer
	c *GRPCCeiling
}

func (r ceilingRequest) Request(_ context.Context, p *nacospb.Payload) (*nacospb.Payload, error) {
	if out := r.c.routes[p.GetMetadata().GetType()]; out != nil {
		return out, nil
	}
	return r.c.def, nil
}

type ceilingStream struct {
	nacospb.UnimplementedBiRequestStreamServer
}

func (ceilingStream) RequestBiStream(st nacospb.BiRequestStream_RequestBiStreamServer) error {
	for {
		if _, err := st.Recv(); err != nil {
			return nil
		}
	}
}

// DefaultGRPCRoutes answers the requests a client's connection setup
// needs, for a ceiling started without captured answers.
func DefaultGRPCRoutes() map[string]GRPCReply {
	ok := `{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":""`
	return map[string]GRPCReply{
		grpcapi.TypeServerCheckRequest: {Type: grpcapi.TypeServerCheckResponse,
			Body: []byte(ok + `,"connectionId":"ceiling","supportAbilityNegotiation":false}`)},
		grpcapi.TypeHealthCheckRequest: {Type: grpcapi.TypeHealthCheckResponse, Body: []byte(ok + "}")},
	}
}

// LoadGRPCRoutes reads the answers a v2 run captured (--capture-dir) into
// routes keyed by request type.
func LoadGRPCRoutes(dir string) (map[string]GRPCReply, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	routes := map[string]GRPCReply{}
	for _, e := range ents {
		m, p, ok := ParseCaptureFile(e.Name())
		if !ok || e.IsDir() || m != CaptureMethodGRPC {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		typ, body, ok := bytes.Cut(b, []byte("\n"))
		if !ok || len(typ) == 0 {
			return nil, fmt.Errorf("%s: want the response type, a newline and the body", e.Name())
		}
		routes[strings.TrimPrefix(p, "/")] = GRPCReply{Type: string(typ), Body: body}
	}
	if len(routes) == 0 {
		return nil, errors.New(dir + ": no captured gRPC answers")
	}
	return routes, nil
}

// captureGRPC saves the first answer to each request type (see
// CaptureMethodGRPC).
func (d *GRPCDriver) captureGRPC(reqType, respType string, body []byte) {
	if d.opts.CaptureDir == "" || respType == grpcapi.TypeErrorResponse {
		return
	}
	d.capMu.Lock()
	defer d.capMu.Unlock()
	if d.captured[reqType] {
		return
	}
	if d.captured == nil {
		d.captured = map[string]bool{}
	}
	d.captured[reqType] = true
	_ = os.MkdirAll(d.opts.CaptureDir, 0o755)
	out := append(append([]byte(respType), '\n'), body...)
	_ = os.WriteFile(filepath.Join(d.opts.CaptureDir, CaptureFile(CaptureMethodGRPC, "/"+reqType)), out, 0o644)
}
