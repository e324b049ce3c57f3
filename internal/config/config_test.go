package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

const secret32 = "0123456789abcdef0123456789abcdef"

// load runs the whole resolution: flags parsed from args, then Load with
// the given environment.
func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	c := Default()
	fs := pflag.NewFlagSet("distrod", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	err := Load(fs, &c, func(k string) string { return env[k] })
	return c, err
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "distrod.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Clustered() {
		t.Fatal("defaults are clustered")
	}
	if c.HTTPAddr() != "0.0.0.0:8848" || c.GRPCAddr() != "0.0.0.0:9848" || c.ClusterAddr() != "0.0.0.0:9849" {
		t.Fatalf("addresses %s %s %s", c.HTTPAddr(), c.GRPCAddr(), c.ClusterAddr())
	}
	// Nacos checks persistent instances with TCP unless told otherwise.
	if !c.HealthChecks || c.HealthCheckDefault != "TCP" {
		t.Fatalf("health checks %v, default checker %q; want on, TCP", c.HealthChecks, c.HealthCheckDefault)
	}
	// Health checks never reach the metadata service, and reach loopback.
	if hp := c.HealthCheckAddrs(); hp.Check(netip.MustParseAddr("169.254.169.254")) == nil || hp.Check(netip.MustParseAddr("127.0.0.1")) != nil {
		t.Fatalf("default health check address policy %+v", hp)
	}
	l := c.Limits()
	if l.MaxBodyBytes != 1<<20 || l.MaxNameLen != 255 || l.MaxMetadataKeys != 64 || l.MaxMetadataBytes != 16<<10 {
		t.Fatalf("limits %+v", l)
	}
	// Nothing given anywhere: Load keeps the defaults.
	got, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != Default() {
		t.Fatalf("Load without input changed the defaults:\n%+v", got)
	}
}

func TestPrecedence(t *testing.T) {
	path := writeYAML(t, `
port: 7000
log-level: debug
bind: 127.0.0.1
cache-millis: 2000
sync-delay: 50ms
expire-max-fraction: 0.3
udp-push: false
`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"yaml over defaults", []string{"--config", path}, nil, func(t *testing.T, c Config) {
			if c.Port != 7000 || c.LogLevel != "debug" || c.Bind != "127.0.0.1" || c.CacheMillis != 2000 ||
				c.SyncDelay != 50*time.Millisecond || c.ExpireMaxFraction != 0.3 || c.UDPPush {
				t.Fatalf("%+v", c)
			}
			if c.VerifyInterval != 5*time.Second {
				t.Fatal("a key missing from YAML lost its default")
			}
		}},
		{"config path from env", nil, map[string]string{"DISTRO_CONFIG": path}, func(t *testing.T, c Config) {
			if c.Port != 7000 {
				t.Fatalf("port %d", c.Port)
			}
		}},
		{"env over yaml", []string{"--config", path}, map[string]string{
			"DISTRO_PORT": "7100", "DISTRO_SYNC_DELAY": "75ms", "DISTRO_UDP_PUSH": "true", "DISTRO_MAX_NAME_LEN": "100",
		}, func(t *testing.T, c Config) {
			if c.Port != 7100 || c.SyncDelay != 75*time.Millisecond || !c.UDPPush || c.MaxNameLen != 100 || c.LogLevel != "debug" {
				t.Fatalf("%+v", c)
			}
		}},
		{"flags over env and yaml", []string{"--config", path, "--port", "7200", "--log-level=warn", "--udp-push=false"},
			map[string]string{"DISTRO_PORT": "7100", "DISTRO_LOG_LEVEL": "error", "DISTRO_UDP_PUSH": "true", "DISTRO_CACHE_MILLIS": "4000"},
			func(t *testing.T, c Config) {
				if c.Port != 7200 || c.LogLevel != "warn" || c.UDPPush || c.CacheMillis != 4000 {
					t.Fatalf("%+v", c)
				}
			}},
		{"console flags", []string{"--console-edit"}, map[string]string{"DISTRO_CONSOLE": "false"}, func(t *testing.T, c Config) {
			if c.Console || !c.ConsoleEdit {
				t.Fatalf("console=%v console-edit=%v; want false, true", c.Console, c.ConsoleEdit)
			}
		}},
		{"flag equal to the default still wins", []string{"--config", path, "--port", "8848"}, nil, func(t *testing.T, c Config) {
			if c.Port != 8848 {
				t.Fatalf("port %d: an explicit flag lost to YAML", c.Port)
			}
		}},
		{"empty env is ignored", []string{"--config", path}, map[string]string{"DISTRO_PORT": ""}, func(t *testing.T, c Config) {
			if c.Port != 7000 {
				t.Fatalf("port %d", c.Port)
			}
		}},
		{"flag config path over env", []string{"--config", path}, map[string]string{"DISTRO_CONFIG": "/nonexistent.yaml"}, func(t *testing.T, c Config) {
			if c.Port != 7000 {
				t.Fatalf("port %d", c.Port)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // "" for no file
		args []string
		env  map[string]string
		want string
	}{
		{"unknown yaml key", "port: 1\nprot: 2\n", nil, nil, "prot"},
		{"wrong yaml type", "port: many\n", nil, nil, "line 1"},
		{"missing file", "", []string{"--config", "/nonexistent/distrod.yaml"}, nil, "nonexistent"},
		{"bad env value", "", nil, map[string]string{"DISTRO_PORT": "eighty"}, "DISTRO_PORT"},
		{"bad env duration", "", nil, map[string]string{"DISTRO_VERIFY_INTERVAL": "often"}, "DISTRO_VERIFY_INTERVAL"},
		{"cluster without secret", "", []string{"--members", "10.0.0.1:8848,10.0.0.2:8848"}, nil, "cluster-secret"},
		{"short secret", "", []string{"--members", "10.0.0.1:8848", "--cluster-secret", "short"}, nil, "at least 32"},
		{"secret one byte short", "", []string{"--cluster-conf", "/etc/cluster.conf"}, map[string]string{"DISTRO_CLUSTER_SECRET": secret32[:31]}, "31 bytes"},
		{"two member sources", "", []string{"--members", "a:1", "--address-server", "http://x", "--cluster-secret", secret32}, nil, "only one member source"},
		{"dns and file", "", []string{"--members-dns", "distro-headless", "--cluster-conf", "c", "--cluster-secret", secret32}, nil, "only one member source"},
		{"dns interval", "", []string{"--members-dns", "distro-headless", "--members-dns-interval", "0s", "--cluster-secret", secret32}, nil, "members-dns-interval"},
		{"bad log level", "", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad log format", "", []string{"--log-format", "xml"}, nil, "log-format"},
		{"bad bind", "", []string{"--bind", "example.com"}, nil, "bind"},
		{"bad pprof address", "", []string{"--pprof-addr", "6060"}, nil, "pprof-addr"},
		{"port leaves no room", "", []string{"--port", "65000"}, nil, "port"},
		{"port zero", "", []string{"--port", "0"}, nil, "port"},
		{"fraction", "", []string{"--expire-max-fraction", "1.5"}, nil, "expire-max-fraction"},
		{"negative duration", "", []string{"--sync-delay", "-1s"}, nil, "sync-delay"},
		{"retention vs verify", "", []string{"--tombstone-retention", "5s"}, nil, "twice verify-interval"},
		{"body limit", "", []string{"--max-body-bytes", "10"}, nil, "max-body-bytes"},
		{"name limit", "", []string{"--max-name-len", "0"}, nil, "limits"},
		{"bad deny range", "", []string{"--health-check-deny", "169.254.0.0/16,metadata"}, nil, "health-check-deny"},
		{"bad allow range", "", nil, map[string]string{"DISTRO_HEALTH_CHECK_ALLOW": "10.0.0.0/40"}, "health-check-allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				args = append([]string{"--config", writeYAML(t, tt.yaml)}, args...)
			}
			_, err := load(t, args, tt.env)
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestClusterSecretRules(t *testing.T) {
	for _, tt := range []struct {
		name string
		mut  func(*Config)
		ok   bool
	}{
		{"standalone needs no secret", func(*Config) {}, true},
		{"cluster with 32-byte secret", func(c *Config) { c.Members, c.ClusterSecret = "a:1", secret32 }, true},
		{"cluster insecure, auth off", func(c *Config) { c.Members, c.InsecureCluster, c.Auth = "a:1", true, "false" }, true},
		{"insecure with short secret", func(c *Config) { c.Members, c.InsecureCluster, c.ClusterSecret, c.Auth = "a:1", true, "x", "false" }, true},
		{"cluster no secret", func(c *Config) { c.AddressServer = "http://as" }, false},
		{"dns cluster no secret", func(c *Config) { c.MembersDNS = "distro-headless" }, false},
		{"cluster short secret", func(c *Config) { c.ClusterConf, c.ClusterSecret = "f", secret32[:31] }, false},
	} {
		c := Default()
		tt.mut(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestAuthRules(t *testing.T) {
	for _, tt := range []struct {
		name string
		mut  func(*Config)
		on   bool
		ok   bool
	}{
		{"standalone: off by default", func(*Config) {}, false, true},
		{"cluster: on by default, key from the cluster secret", func(c *Config) { c.Members, c.ClusterSecret = "a:1", secret32 }, true, true},
		{"cluster: explicitly off", func(c *Config) { c.Members, c.ClusterSecret, c.Auth = "a:1", secret32, "false" }, false, true},
		{"standalone: explicitly on", func(c *Config) { c.Auth = "true" }, true, true},
		{"insecure cluster needs a token secret", func(c *Config) { c.Members, c.InsecureCluster = "a:1", true }, true, false},
		{"insecure cluster with a token secret", func(c *Config) { c.Members, c.InsecureCluster, c.AuthTokenSecret = "a:1", true, secret32 }, true, true},
		{"short token secret", func(c *Config) { c.Auth, c.AuthTokenSecret = "true", secret32[:31] }, true, false},
		{"short admin password", func(c *Config) { c.Auth, c.AuthAdminPassword = "true", "nacos" }, true, false},
		{"no data dir", func(c *Config) { c.Auth, c.DataDir = "true", "" }, true, false},
	} {
		c := Default()
		tt.mut(&c)
		if got := c.AuthEnabled(); got != tt.on {
			t.Errorf("%s: AuthEnabled = %v, want %v", tt.name, got, tt.on)
		}
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestAuthFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want Toggle
	}{
		{nil, nil, ""},
		{[]string{"--auth"}, nil, "true"},
		{[]string{"--auth=false"}, nil, "false"},
		{nil, map[string]string{"DISTRO_AUTH": "0"}, "false"},
		{[]string{"--auth=yes"}, nil, "error"},
	} {
		c := Default()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			if tt.want != "error" {
				t.Errorf("%v: %v", tt.args, err)
			}
			continue
		}
		if err := Load(fs, &c, func(k string) string { return tt.env[k] }); err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if c.Auth != tt.want {
			t.Errorf("%v %v: Auth = %q, want %q", tt.args, tt.env, c.Auth, tt.want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Port, c.LogLevel, c.LogFormat = 0, "x", "y"
	err := c.Validate()
	for _, field := range []string{"port", "log-level", "log-format"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
}

func TestEmptyYAMLFile(t *testing.T) {
	c, err := load(t, []string{"--config", writeYAML(t, "")}, nil)
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if c != Default() {
		t.Fatal("an empty file changed the configuration")
	}
}

func TestEnvNamesMatchFlags(t *testing.T) {
	// Every flag but --config has a DISTRO_ variable that sets it.
	c := Default()
	fs := pflag.NewFlagSet("distrod", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	n := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		n++
		env := "DISTRO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		seen := false
		c2 := Default()
		fs2 := pflag.NewFlagSet("distrod", pflag.ContinueOnError)
		c2.RegisterFlags(fs2)
		_ = fs2.Parse(nil)
		_ = Load(fs2, &c2, func(k string) string {
			if k == env {
				seen = true
			}
			return ""
		})
		if !seen {
			t.Errorf("flag --%s: %s never read", f.Name, env)
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags registered", n)
	}
}

func TestAuthFromConfigFile(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want Toggle
		ok   bool
	}{{"auth: true\n", "true", true}, {"auth: false\n", "false", true}, {"auth: \"0\"\n", "false", true}, {"auth: maybe\n", "", false}} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		err := Load(fs, &c, func(string) string { return "" })
		if (err == nil) != tt.ok || err == nil && c.Auth != tt.want {
			t.Errorf("%q: Auth %q, error %v; want %q ok=%v", tt.yaml, c.Auth, err, tt.want, tt.ok)
		}
	}
}
