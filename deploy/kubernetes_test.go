package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/distro-registry/distro/internal/config"
)

const dir = "kubernetes"

// manifests is every object of deploy/kubernetes, decoded strictly.
type manifests struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
}

// kustomization is the part of kustomization.yaml the test reads; strict
// decoding makes an unexpected key fail rather than be ignored.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

func load(t *testing.T) manifests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var listed []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			listed = append(listed, b)
		}
	}
	if res := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(res, listed) {
		t.Fatalf("kustomization resources %v, files %v: every manifest must be listed, every listed file must exist", res, listed)
	}
	var m manifests
	for _, f := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(raw) {
			where := fmt.Sprintf("%s document %d", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				m.statefulSets, obj = append(m.statefulSets, o), o
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, o), o
			default:
				t.Fatalf("%s: unexpected object %s %s (extend the test)", where, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			name := obj.(metav1.Object).GetName()
			for _, msg := range validation.IsDNS1035Label(name) {
				t.Errorf("%s: name %q: %s", where, name, msg)
			}
		}
	}
	return m
}

func splitDocuments(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func (m manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func TestManifests(t *testing.T) {
	m := load(t)
	if len(m.statefulSets) != 1 || len(m.pdbs) != 1 || len(m.services) != 2 {
		t.Fatalf("want one StatefulSet, one PodDisruptionBudget and two Services; have %d, %d, %d",
			len(m.statefulSets), len(m.pdbs), len(m.services))
	}
	sts := m.statefulSets[0]
	pod := sts.Spec.Template
	podLabels := labels.Set(pod.Labels)

	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Fatalf("StatefulSet selector %v (%v) does not select its own pods %v", sts.Spec.Selector, err, podLabels)
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 3 {
		t.Errorf("replicas %v: a cluster needs at least 3 nodes to survive one failure with a majority of data owners", sts.Spec.Replicas)
	}
	if sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		t.Errorf("update strategy %q: updates must roll one pod at a time", sts.Spec.UpdateStrategy.Type)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("distrod needs no Kubernetes API token: set automountServiceAccountToken: false")
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod must run as a non-root user (runAsNonRoot and a non-zero runAsUser)")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	// distrod's own configuration loader must accept the arguments and
	// the environment, with the Secret standing in for its value.
	cfg := config.Default()
	fs := pflag.NewFlagSet("distrod", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("distrod rejects the container args %q: %v", c.Args, err)
	}
	env := map[string]string{}
	secrets := map[string]*corev1.SecretKeySelector{}
	for _, e := range c.Env {
		if e.Name == "DISTRO_CLUSTER_SECRET" || e.Name == "DISTRO_AUTH_ADMIN_PASSWORD" {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
				t.Fatalf("%s must come from a Secret (valueFrom.secretKeyRef), never a literal", e.Name)
			}
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name == "" || ref.Key == "" {
				t.Fatalf("%s: Secret name and key must be set", e.Name)
			}
			if ref.Optional != nil && *ref.Optional {
				t.Errorf("%s must not be optional: without it distrod refuses to start, and should", e.Name)
			}
			secrets[e.Name] = ref
			env[e.Name] = strings.Repeat("s", 44)
			continue
		}
		if e.ValueFrom != nil {
			t.Fatalf("env %s: unexpected valueFrom", e.Name)
		}
		env[e.Name] = e.Value
	}
	if secrets["DISTRO_CLUSTER_SECRET"] == nil {
		t.Fatal("no DISTRO_CLUSTER_SECRET from a Secret")
	}
	if err := config.Load(fs, &cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("distrod rejects the configuration: %v", err)
	}
	if cfg.ClusterSecret == "" || cfg.InsecureCluster {
		t.Error("cluster traffic must be authenticated")
	}
	// With client auth on (the default in a cluster), the admin comes from
	// the Secret: it works on every node at once, where a generated one
	// would be written into one pod's data volume.
	if cfg.AuthEnabled() && cfg.AuthAdminPassword == "" {
		t.Error("client auth is on: DISTRO_AUTH_ADMIN_PASSWORD must come from the Secret")
	}
	// The root filesystem is read-only: --data-dir must be a mounted
	// volume, and one that outlives the pod (a volumeClaimTemplate): it
	// holds the Raft log, and a cluster whose pods all lost it has lost
	// every persistent instance and user.
	mounted := ""
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == cfg.DataDir || strings.HasPrefix(cfg.DataDir, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			mounted = vm.Name
		}
	}
	if mounted == "" {
		t.Errorf("--data-dir %q is not on a mounted volume (the root filesystem is read-only)", cfg.DataDir)
	}
	claimed := false
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claimed = claimed || pvc.Name == mounted
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == mounted {
			claimed = false // a pod volume of that name would shadow the claim
		}
	}
	if mounted != "" && !claimed {
		t.Errorf("--data-dir is on volume %q, which is not a volumeClaimTemplate: the Raft data would not outlive the pod", mounted)
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.FSGroup == nil || psc.RunAsGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
		t.Error("the data volume must be writable by the pod's group: set fsGroup to runAsGroup")
	}

	// Ports: container ports are distrod's, named as the probes and
	// Services refer to them.
	for name, want := range map[string]int{"http": cfg.Port, "grpc": cfg.Port + cfg.GRPCPortOffset, "cluster": cfg.Port + cfg.ClusterPortOffset,
		"raft": cfg.Port + cfg.RaftPortOffset} {
		if got := ports[name]; int(got) != want {
			t.Errorf("container port %q is %d, distrod listens on %d", name, got, want)
		}
	}

	// Probes: readiness on /readyz, liveness on /healthz.
	probe := func(what string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet probe on %s", what, path)
			return
		}
		if p.HTTPGet.Path != path || !namesPort(p.HTTPGet.Port, ports, cfg.Port) {
			t.Errorf("%s probe: %s on port %s, want %s on the HTTP port", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	if sp := c.StartupProbe; sp != nil {
		// Start can wait for the pod's own DNS record (the lookup's
		// startup timeout, 2 min): the startup probe must cover it.
		if budget := int(sp.PeriodSeconds * sp.FailureThreshold); budget < 150 {
			t.Errorf("startup probe allows %d s; --members-dns may wait 120 s for the pod's own record", budget)
		}
	}

	// Resources: requests for scheduling, a memory limit, no CPU limit.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("no CPU limit: throttling pauses the process (hazard H8)")
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("container securityContext: want allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL")
	}

	// The headless Service: peer discovery for every pod, ready or not.
	hs := m.service(sts.Spec.ServiceName)
	if hs == nil {
		t.Fatalf("StatefulSet serviceName %q has no Service", sts.Spec.ServiceName)
	}
	if hs.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s must be headless (clusterIP: None)", hs.Name)
	}
	if !hs.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s must publish not-ready pods: a starting pod must find itself before it is ready", hs.Name)
	}
	// --members-dns is an SRV name _<port>._tcp.<headless Service>
	// whose port is distrod's HTTP port.
	srv := regexp.MustCompile(`^_([a-z0-9-]+)\._tcp\.([a-z0-9-]+)$`).FindStringSubmatch(cfg.MembersDNS)
	if srv == nil || srv[2] != hs.Name {
		t.Fatalf("--members-dns %q: want _<port name>._tcp.%s", cfg.MembersDNS, hs.Name)
	}
	var srvPort *corev1.ServicePort
	for i := range hs.Spec.Ports {
		if hs.Spec.Ports[i].Name == srv[1] {
			srvPort = &hs.Spec.Ports[i]
		}
	}
	if srvPort == nil || srvPort.Port != int32(cfg.Port) || !namesPort(srvPort.TargetPort, ports, cfg.Port) {
		t.Errorf("--members-dns port %q must be a port of %s equal to the HTTP port %d (member identities are host:httpPort)",
			srv[1], hs.Name, cfg.Port)
	}
	if cfg.Advertise != "" {
		t.Error("--advertise is not needed: each pod finds its own SRV entry by its pod IP")
	}

	// Every Service selects the pods and targets their ports.
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selector %v does not match the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if !namesPort(p.TargetPort, ports, 0) {
				t.Errorf("Service %s port %s targets %s, not a container port", s.Name, p.Name, p.TargetPort.String())
			}
		}
	}

	// The PodDisruptionBudget covers the pods and allows one disruption.
	pdb := m.pdbs[0]
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || psel.Empty() || !psel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector)
	}
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.Type != intstr.Int || mu.IntVal != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: want maxUnavailable: 1")
	}
}

// namesPort reports whether p names a container port (by name or number),
// and that port is want when want is non-zero.
func namesPort(p intstr.IntOrString, ports map[string]int32, want int) bool {
	var n int32
	if p.Type == intstr.String {
		var ok bool
		if n, ok = ports[p.StrVal]; !ok {
			return false
		}
	} else {
		n = p.IntVal
		if !slices.Contains(slices.Collect(maps.Values(ports)), n) {
			return false
		}
	}
	return want == 0 || int(n) == want
}

// TestDockerfile checks the image recipe by reading it: a static binary, a
// minimal base, a non-root user and the ports the manifests use.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, exposes []string
	var buildLines []string
	for _, line := range strings.Split(string(bytes.ReplaceAll(raw, []byte("\\\n"), nil)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "EXPOSE":
			exposes = append(exposes, f[1:]...)
		case "RUN":
			if strings.Contains(line, "go build") {
				buildLines = append(buildLines, line)
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, FROM lines %v", froms)
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage %q: want distroless/static or scratch", final)
	}
	if len(users) == 0 {
		t.Fatal("no USER: the image must not run as root")
	}
	uid := strings.SplitN(users[len(users)-1], ":", 2)[0]
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot can only verify numbers)", users[len(users)-1])
	}
	if len(buildLines) != 1 || !strings.Contains(buildLines[0], "CGO_ENABLED=0") || !strings.Contains(buildLines[0], "./cmd/distrod") {
		t.Errorf("build step %q: want one static (CGO_ENABLED=0) build of ./cmd/distrod", buildLines)
	}
	if want := []string{"7848", "8848", "9848", "9849"}; !slices.Equal(exposes, want) {
		t.Errorf("EXPOSE %v, want %v", exposes, want)
	}
	// The pod's runAsUser must be the image's user.
	sts := load(t).statefulSets[0]
	if psc := sts.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsUser == nil || strconv.FormatInt(*psc.RunAsUser, 10) != uid {
		t.Errorf("pod runAsUser differs from the image USER %s", uid)
	}
}
