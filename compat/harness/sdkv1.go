package harness

// Helpers for the Go SDK github.com/nacos-group/nacos-sdk-go v1.1.6 (HTTP v1
// API plus UDP push). The SDK's HTTP recorder is in sdkv1wire.go.

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nacos-group/nacos-sdk-go/clients/nacos_client"
	"github.com/nacos-group/nacos-sdk-go/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"
)

// V1Client is a v1 SDK naming client built by NewV1Client, plus the record
// of its HTTP exchanges.
type V1Client struct {
	naming_client.INamingClient
	// Name labels the client in failure messages.
	Name string
	// Wire records what the client sent and what the server answered.
	Wire *WireLog
}

// NewV1Client builds a v1 naming client for the given nodes the way
// clients.NewNamingClient does, except that the SDK's own HttpAgent is
// wrapped to record every exchange in Wire (the same agent still sends
// every request). Given several nodes, the SDK picks a random one per
// request and fails over to the others.
//
// Settings: TimeoutMs 3000, NotLoadCacheAtStart, UpdateCacheWhenEmpty, a
// CacheDir of its own below TempRoot, and debug logs in TempRoot/sdk-log:
// the SDK logger is process-global (the last client's settings win), so
// all clients share one log directory.
//
// If tb fails, the exchanges are logged at cleanup. The v1 SDK has no
// Close: the client's goroutines (beats, push receiver, poll) live until
// the test binary exits.
func NewV1Client(tb testing.TB, name string, nodes ...*Node) *V1Client {
	tb.Helper()
	return NewV1ClientWith(tb, name, Credentials{}, nodes...)
}

// NewV1ClientWith is NewV1Client for a client configured with a user name
// and password (auth on); the SDK logs in and sends its token.
func NewV1ClientWith(tb testing.TB, name string, creds Credentials, nodes ...*Node) *V1Client {
	tb.Helper()
	root, err := TempRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := TempDir("v1-client-" + tb.Name() + "-" + name)
	if err != nil {
		tb.Fatal(err)
	}
	cc := constant.ClientConfig{
		TimeoutMs:            3000,
		NotLoadCacheAtStart:  true,
		UpdateCacheWhenEmpty: true,
		CacheDir:             filepath.Join(dir, "cache"),
		LogDir:               filepath.Join(root, "sdk-log"),
		LogLevel:             "debug",
		Username:             creds.Username,
		Password:             creds.Password,
	}
	var sc []constant.ServerConfig
	for _, n := range nodes {
		sc = append(sc, constant.ServerConfig{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())})
	}
	wire := &WireLog{}
	nc := &nacos_client.NacosClient{}
	if err := nc.SetClientConfig(cc); err != nil {
		tb.Fatal(err)
	}
	if err := nc.SetServerConfig(sc); err != nil {
		tb.Fatal(err)
	}
	if err := nc.SetHttpAgent(&recordingAgent{log: wire}); err != nil {
		tb.Fatal(err)
	}
	nm, err := naming_client.NewNamingClient(nc)
	if err != nil {
		tb.Fatalf("v1 NewNamingClient(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("--- v1 SDK client %q: HTTP exchanges (server the SDK picked, what it sent -> what distrod answered) ---\n%s", name, wire)
		}
	})
	return &V1Client{INamingClient: &nm, Name: name, Wire: wire}
}

// MustRegister registers p and fails tb unless the SDK reports success.
func (c *V1Client) MustRegister(tb testing.TB, p vo.RegisterInstanceParam) {
	tb.Helper()
	ok, err := c.RegisterInstance(p)
	if err != nil || !ok {
		tb.Fatalf("%s: RegisterInstance(%s %s) = %v, %v", c.Name, p.ServiceName, V1ParamKey(p), ok, err)
	}
}

// V1RegisterParam is a healthy, enabled, ephemeral instance of weight 1.
func V1RegisterParam(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{
		ServiceName: svc, Ip: ip, Port: port, ClusterName: cluster,
		Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
	}
}

// V1ParamKey is InstanceKey of a registration.
func V1ParamKey(p vo.RegisterInstanceParam) string {
	return InstanceKey(p.Ip, p.Port, p.ClusterName)
}

// V1Subscriber collects v1 subscribe callbacks (see Subscriber).
type V1Subscriber = Subscriber[model.SubscribeService]

// V1SubscribeEvent is one v1 subscribe callback.
type V1SubscribeEvent = SubscribeEvent[model.SubscribeService]

// V1HostAddr names a host of a v1 subscribe callback "ip:port".
func V1HostAddr(h model.SubscribeService) string {
	return fmt.Sprintf("%s:%d", h.Ip, h.Port)
}

// V1HostKey names a host of a v1 subscribe callback "ip:port#cluster",
// with the cluster exactly as the server sent it.
func V1HostKey(h model.SubscribeService) string {
	return fmt.Sprintf("%s:%d#%s", h.Ip, h.Port, h.ClusterName)
}
