package harness

// Helpers for the Go SDK github.com/nacos-group/nacos-sdk-go/v2 v2.3.5
// (Nacos 2 gRPC for ephemeral instances, pushes on the bi-stream).

import (
	"path/filepath"
	"testing"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// V2Client is a v2 SDK naming client built by NewV2Client.
type V2Client struct {
	naming_client.INamingClient
	// Label is the client's AppConnLabels value "compat"; distrod's
	// /distro/admin/connections shows it as labels["app_compat"] (see
	// Node.GRPCConns).
	Label string
}

// NewV2Client creates a v2 naming client, labelled label, that knows only
// the given nodes (one node pins it there). Settings: TimeoutMs 3000,
// NotLoadCacheAtStart, UpdateCacheWhenEmpty, and a CacheDir and LogDir of
// its own below TempRoot (the SDK logs there unless a logger was set with
// its logger.SetLogger). The client is closed at tb's cleanup.
func NewV2Client(tb testing.TB, label string, nodes ...*Node) *V2Client {
	tb.Helper()
	return NewV2ClientWith(tb, label, Credentials{}, nodes...)
}

// Credentials configure an SDK client's login (auth on).
type Credentials struct{ Username, Password string }

// NewV2ClientWith is NewV2Client for a client configured with a user name
// and password (auth on). The SDK logs in over HTTP at creation and sends
// its token in every gRPC request's headers. It fails tb when the client
// cannot be created; use NewV2ClientErr to see that error.
func NewV2ClientWith(tb testing.TB, label string, creds Credentials, nodes ...*Node) *V2Client {
	tb.Helper()
	c, err := NewV2ClientErr(tb, label, creds, nodes...)
	if err != nil {
		tb.Fatalf("v2 NewNamingClient(%s): %v", label, err)
	}
	return c
}

// NewV2ClientErr builds the client of NewV2ClientWith and returns the
// SDK's error instead of failing.
func NewV2ClientErr(tb testing.TB, label string, creds Credentials, nodes ...*Node) (*V2Client, error) {
	tb.Helper()
	dir, err := TempDir("v2-client-" + label)
	if err != nil {
		tb.Fatal(err)
	}
	cc := constant.ClientConfig{
		TimeoutMs:            3000,
		NotLoadCacheAtStart:  true,
		UpdateCacheWhenEmpty: true,
		CacheDir:             filepath.Join(dir, "cache"),
		LogDir:               filepath.Join(dir, "log"),
		LogLevel:             "debug",
		AppConnLabels:        map[string]string{"compat": label},
		Username:             creds.Username,
		Password:             creds.Password,
	}
	var sc []constant.ServerConfig
	for _, n := range nodes {
		sc = append(sc, constant.ServerConfig{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())})
	}
	nc, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(nc.CloseClient)
	return &V2Client{INamingClient: nc, Label: label}, nil
}

// MustRegister registers p and fails tb unless the SDK reports success.
func (c *V2Client) MustRegister(tb testing.TB, p vo.RegisterInstanceParam) {
	tb.Helper()
	ok, err := c.RegisterInstance(p)
	if err != nil || !ok {
		tb.Fatalf("%s: RegisterInstance(%s %s) = %v, %v", c.Label, p.ServiceName, V2ParamKey(p), ok, err)
	}
}

// MustDeregister deregisters the ephemeral instance p and fails tb unless
// the SDK reports success.
func (c *V2Client) MustDeregister(tb testing.TB, p vo.RegisterInstanceParam) {
	tb.Helper()
	ok, err := c.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: p.ServiceName, GroupName: p.GroupName, Ip: p.Ip, Port: p.Port, Cluster: p.ClusterName, Ephemeral: true})
	if err != nil || !ok {
		tb.Fatalf("%s: DeregisterInstance(%s %s) = %v, %v", c.Label, p.ServiceName, V2ParamKey(p), ok, err)
	}
}

// V2RegisterParam is a healthy, enabled, ephemeral instance of weight 1.
// Ephemeral matters: the v2 SDK sends a persistent instance (the zero
// value) over HTTP instead of gRPC.
func V2RegisterParam(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{
		ServiceName: svc, Ip: ip, Port: port, ClusterName: cluster,
		Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
	}
}

// V2ParamKey is InstanceKey of a registration.
func V2ParamKey(p vo.RegisterInstanceParam) string {
	return InstanceKey(p.Ip, p.Port, p.ClusterName)
}

// V2HostKey is InstanceKey of a host the v2 SDK returned or pushed.
func V2HostKey(h model.Instance) string {
	return InstanceKey(h.Ip, h.Port, h.ClusterName)
}

// V2Subscriber collects v2 subscribe callbacks (see Subscriber).
type V2Subscriber = Subscriber[model.Instance]

// V2SubscribeEvent is one v2 subscribe callback.
type V2SubscribeEvent = SubscribeEvent[model.Instance]
