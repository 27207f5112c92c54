package kubernetes

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// queueClose is how long queue.Close waits for the NATS connection to
// drain (pkg/queue/queue.go).
const queueClose = 10 * time.Second

// drains is how long each worker may keep working after SIGTERM, from the
// code it runs. A grace period shorter than that kills work the process
// would have finished; a component missing here fails the test, so a new
// Deployment cannot skip the question.
var drains = map[string]time.Duration{
	// submitter.Config.ShutdownTimeout's default: in-flight convert calls.
	"submitter": 60*time.Second + queueClose,
	// serve's http.Server.Shutdown (cmd/scribeq/workers.go): in-flight webhooks.
	"ingress": 30*time.Second + queueClose,
	// One fetch (sink.Config.MaxWait) and the commit of what it holds,
	// bounded by the store's statement_timeout.
	"sink": time.Second + 30*time.Second + queueClose,
	// reconciler.Config's GetTimeout and PublishTimeout defaults: the GETs
	// in flight finish and publish.
	"reconciler": 2*time.Minute + 30*time.Second + queueClose,
}

// objects is a kustomize build, decoded: each map is by name.
type objects struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	ingresses   map[string]*networkingv1.Ingress
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

// build runs `kustomize build dir` in process.
func build(dir string) (resmap.ResMap, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return rm, nil
}

// decode turns every resource into its API type, refusing unknown fields,
// duplicate fields and kinds this base is not meant to contain.
func decode(rm resmap.ResMap) (*objects, error) {
	o := &objects{
		deployments: map[string]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
		services:    map[string]*corev1.Service{},
		ingresses:   map[string]*networkingv1.Ingress{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		typeOf := r.GetApiVersion() + " " + r.GetKind()
		var (
			obj  any
			meta *metav1.ObjectMeta
			keep func()
		)
		switch typeOf {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			obj, meta, keep = d, &d.ObjectMeta, func() { o.deployments[d.Name] = d }
		case "batch/v1 Job":
			j := &batchv1.Job{}
			obj, meta, keep = j, &j.ObjectMeta, func() { o.jobs[j.Name] = j }
		case "v1 Service":
			s := &corev1.Service{}
			obj, meta, keep = s, &s.ObjectMeta, func() { o.services[s.Name] = s }
		case "networking.k8s.io/v1 Ingress":
			i := &networkingv1.Ingress{}
			obj, meta, keep = i, &i.ObjectMeta, func() { o.ingresses[i.Name] = i }
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			obj, meta, keep = c, &c.ObjectMeta, func() { o.configMaps[c.Name] = c }
		case "v1 Secret":
			s := &corev1.Secret{}
			obj, meta, keep = s, &s.ObjectMeta, func() { o.secrets[s.Name] = s }
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			obj, meta, keep = p, &p.ObjectMeta, func() { o.pdbs[p.Name] = p }
		default:
			return nil, fmt.Errorf("%s %q: a kind this test does not know; add its API type to decode", typeOf, r.GetName())
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			return nil, fmt.Errorf("%s %q does not decode strictly: %w", typeOf, r.GetName(), err)
		}
		if errs := validation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: bad name: %s", typeOf, meta.Name, strings.Join(errs, "; "))
		}
		keep()
	}
	return o, nil
}

func mustDecode(t *testing.T, dir string) *objects {
	t.Helper()
	rm, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	o, err := decode(rm)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestBaseBuildsAndDecodesStrictly builds the base and checks every
// invariant; each problem is reported on its own.
func TestBaseBuildsAndDecodesStrictly(t *testing.T) {
	t.Parallel()
	o := mustDecode(t, ".")
	for _, want := range []string{"scribeq-submitter", "scribeq-ingress", "scribeq-sink", "scribeq-reconciler"} {
		if o.deployments[want] == nil {
			t.Errorf("no Deployment %s", want)
		}
	}
	if o.jobs["scribeq-migrate"] == nil {
		t.Error("no migration Job scribeq-migrate")
	}
	if o.services["scribeq-ingress"] == nil || len(o.ingresses) == 0 {
		t.Error("the ingress needs a Service and an Ingress")
	}
	for _, p := range check(o) {
		t.Error(p)
	}
}

// check returns every broken invariant of a build.
func check(o *objects) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	for name, d := range o.deployments {
		where := "Deployment " + name
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			bad("%s: its selector does not select its own pods (%v)", where, err)
		}
		replicas := int32(0)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if replicas < 1 {
			bad("%s: replicas must be set", where)
		}
		component := d.Spec.Template.Labels["app.kubernetes.io/component"]
		drain, ok := drains[component]
		if !ok {
			bad("%s: no drain timeout known for component %q: add it to drains", where, component)
		}
		spec := &d.Spec.Template.Spec
		for _, c := range spec.Containers {
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				drain += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
		}
		grace := time.Duration(-1)
		if spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		}
		if grace < drain {
			bad("%s: terminationGracePeriodSeconds %v is shorter than its drain %v", where, grace, drain)
		}
		probs = append(probs, checkPod(o, where, spec, d.Spec.Template.Annotations, true)...)
		if replicas > 1 && len(selecting(o, d)) == 0 {
			bad("%s: %d replicas but no PodDisruptionBudget", where, replicas)
		}
	}
	for name, j := range o.jobs {
		probs = append(probs, checkPod(o, "Job "+name, &j.Spec.Template.Spec, j.Spec.Template.Annotations, false)...)
	}
	for name, s := range o.services {
		where := "Service " + name
		pods := podsSelectedBy(o, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(s.Spec.Selector) == 0 || len(pods) == 0 {
			bad("%s: selector %v selects no Deployment's pods", where, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, d := range pods {
				if containerPort(&d.Spec.Template.Spec, p.TargetPort) == nil {
					bad("%s: port %s targets %s, which Deployment %s's containers do not declare", where, p.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
	for name, in := range o.ingresses {
		for _, rule := range in.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, path := range rule.HTTP.Paths {
				b := path.Backend.Service
				if b == nil {
					bad("Ingress %s: path %s has no Service backend", name, path.Path)
					continue
				}
				s := o.services[b.Name]
				if s == nil {
					bad("Ingress %s: path %s goes to Service %s, which does not exist", name, path.Path, b.Name)
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
					return (b.Port.Name != "" && p.Name == b.Port.Name) || (b.Port.Number != 0 && p.Port == b.Port.Number)
				}) {
					bad("Ingress %s: Service %s has no port %s%d", name, b.Name, b.Port.Name, b.Port.Number)
				}
			}
		}
	}
	for name, p := range o.pdbs {
		where := "PodDisruptionBudget " + name
		if p.Spec.Selector == nil {
			bad("%s: no selector", where)
			continue
		}
		pods := podsSelectedBy(o, p.Spec.Selector)
		if len(pods) == 0 {
			bad("%s: selects no Deployment's pods", where)
		}
		for _, d := range pods {
			if m := p.Spec.MinAvailable; m != nil && m.Type == intstr.Int && d.Spec.Replicas != nil && int32(m.IntValue()) >= *d.Spec.Replicas {
				bad("%s: minAvailable %d of %d replicas of %s would block every node drain", where, m.IntValue(), *d.Spec.Replicas, d.Name)
			}
		}
	}
	slices.Sort(probs)
	return probs
}

// checkPod checks what Deployments and Jobs share; probes only for
// long-running pods.
func checkPod(o *objects, where string, spec *corev1.PodSpec, annotations map[string]string, longRunning bool) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(where+": "+format, args...)) }

	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		bad("automountServiceAccountToken must be false: scribeq never talks to the Kubernetes API")
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser == 0 {
		bad("runs as uid 0")
	}
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		volumes[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	if len(spec.Containers) == 0 {
		bad("no containers")
	}
	listening := map[int32]bool{}
	for _, c := range spec.Containers {
		cw := "container " + c.Name
		sc := c.SecurityContext
		if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			bad("%s: runAsNonRoot is not set", cw)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("%s: readOnlyRootFilesystem is not set", cw)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("%s: allowPrivilegeEscalation is not false", cw)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("%s: capabilities are not all dropped", cw)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
				bad("%s: no %s request", cw, r)
			}
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
			bad("%s: no memory limit", cw)
		}
		if len(c.Args) == 0 {
			bad("%s: no args: the image's entrypoint is scribeq and its first argument the command", cw)
		}

		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			if volumes[m.Name] == nil {
				bad("%s: mounts volume %s, which the pod does not have", cw, m.Name)
			}
			mounts[m.MountPath] = m.Name
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && !secretHas(o, r.Name, r.Key) {
				bad("%s: env %s: Secret %s has no key %s", cw, e.Name, r.Name, r.Key)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !configMapHas(o, r.Name, r.Key) {
				bad("%s: env %s: ConfigMap %s has no key %s", cw, e.Name, r.Name, r.Key)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && o.secrets[e.SecretRef.Name] == nil {
				bad("%s: envFrom Secret %s does not exist", cw, e.SecretRef.Name)
			}
			if e.ConfigMapRef != nil && o.configMaps[e.ConfigMapRef.Name] == nil {
				bad("%s: envFrom ConfigMap %s does not exist", cw, e.ConfigMapRef.Name)
			}
		}
		// The root filesystem is read-only: a folder the process writes
		// must be a volume, and a spool must fit in it.
		for name, dir := range env {
			if !strings.HasSuffix(name, "_DIR") || dir == "" {
				continue
			}
			vol := mountedAt(mounts, dir)
			if vol == "" {
				bad("%s: %s=%s is on the read-only root filesystem; mount a volume there", cw, name, dir)
				continue
			}
			if name == "SCRIBEQ_SPOOL_DIR" {
				limit, err := strconv.ParseInt(env["SCRIBEQ_SPOOL_MAX_BYTES"], 10, 64)
				ed := volumes[vol].EmptyDir
				if err == nil && ed != nil && (ed.SizeLimit == nil || ed.SizeLimit.Cmp(*resource.NewQuantity(limit, resource.BinarySI)) < 0) {
					bad("%s: the spool may grow to %d bytes but volume %s's sizeLimit is %v", cw, limit, vol, ed.SizeLimit)
				}
				if err != nil {
					bad("%s: SCRIBEQ_SPOOL_MAX_BYTES must be set beside SCRIBEQ_SPOOL_DIR", cw)
				}
			}
		}
		// The ports the process listens on, from its *_ADDR settings.
		for name, addr := range env {
			if !strings.HasSuffix(name, "_ADDR") {
				continue
			}
			_, p, err := net.SplitHostPort(addr)
			n, perr := strconv.Atoi(p)
			if err != nil || perr != nil {
				bad("%s: %s=%q is not host:port", cw, name, addr)
				continue
			}
			listening[int32(n)] = true
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == int32(n) }) {
				bad("%s: listens on %d (%s) but does not declare that port", cw, n, name)
			}
		}
		if !longRunning {
			continue
		}
		for _, pr := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				bad("%s: no HTTP %s probe", cw, pr.kind)
				continue
			}
			if pr.probe.HTTPGet.Path != pr.path {
				bad("%s: %s probe on %s, want %s", cw, pr.kind, pr.probe.HTTPGet.Path, pr.path)
			}
			cp := containerPort(spec, pr.probe.HTTPGet.Port)
			if cp == nil || !listening[cp.ContainerPort] {
				bad("%s: %s probe port %s is not a port the process listens on", cw, pr.kind, pr.probe.HTTPGet.Port.String())
			}
		}
	}
	if annotations["prometheus.io/scrape"] == "true" {
		n, err := strconv.Atoi(annotations["prometheus.io/port"])
		if err != nil || !listening[int32(n)] {
			bad("prometheus.io/port %q is not a port the process listens on", annotations["prometheus.io/port"])
		}
		if annotations["prometheus.io/path"] != "/metrics" {
			bad("prometheus.io/path is %q, want /metrics", annotations["prometheus.io/path"])
		}
	} else if longRunning {
		bad("no prometheus.io/scrape annotation")
	}
	return probs
}

func secretHas(o *objects, name, key string) bool {
	s := o.secrets[name]
	if s == nil {
		return false
	}
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	return inData || inString
}

func configMapHas(o *objects, name, key string) bool {
	c := o.configMaps[name]
	if c == nil {
		return false
	}
	_, ok := c.Data[key]
	return ok
}

// mountedAt names the volume that holds path, or "".
func mountedAt(mounts map[string]string, path string) string {
	best := ""
	for dir := range mounts {
		if (path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")) && len(dir) > len(best) {
			best = dir
		}
	}
	return mounts[best]
}

// containerPort resolves a port by name or number among the pod's containers.
func containerPort(spec *corev1.PodSpec, p intstr.IntOrString) *corev1.ContainerPort {
	for _, c := range spec.Containers {
		for i, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return &c.Ports[i]
			}
		}
	}
	return nil
}

// podsSelectedBy lists the Deployments whose pods sel selects.
func podsSelectedBy(o *objects, sel *metav1.LabelSelector) []*appsv1.Deployment {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range o.deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

// selecting lists the PodDisruptionBudgets that cover d's pods.
func selecting(o *objects, d *appsv1.Deployment) []string {
	var out []string
	for name, p := range o.pdbs {
		if p.Spec.Selector == nil {
			continue
		}
		if s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err == nil && !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, name)
		}
	}
	return out
}

// TestChecksCatchMistakes breaks the base in the ways a hand edit does and
// expects check to say so: an invariant that cannot fail proves nothing.
func TestChecksCatchMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(o *objects)
		want   string
	}{
		{"NoReadinessProbe", func(o *objects) {
			o.deployments["scribeq-sink"].Spec.Template.Spec.Containers[0].ReadinessProbe = nil
		}, "Deployment scribeq-sink: container sink: no HTTP readiness probe"},
		{"ProbeOnWrongPort", func(o *objects) {
			o.deployments["scribeq-submitter"].Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(8080)
		}, "liveness probe port 8080 is not a port the process listens on"},
		{"ShortGrace", func(o *objects) {
			o.deployments["scribeq-submitter"].Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
		}, "Deployment scribeq-submitter: terminationGracePeriodSeconds 30s is shorter than its drain 1m10s"},
		{"GraceIgnoresPreStop", func(o *objects) {
			o.deployments["scribeq-ingress"].Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(40))
		}, "terminationGracePeriodSeconds 40s is shorter than its drain 45s"},
		{"NoMemoryLimit", func(o *objects) {
			delete(o.deployments["scribeq-reconciler"].Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "container reconciler: no memory limit"},
		{"RunsAsRoot", func(o *objects) {
			o.deployments["scribeq-ingress"].Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr(false)
		}, "container ingress: runAsNonRoot is not set"},
		{"WritableRoot", func(o *objects) {
			o.jobs["scribeq-migrate"].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "Job scribeq-migrate: container migrate: readOnlyRootFilesystem is not set"},
		{"MissingSecretKey", func(o *objects) {
			delete(o.secrets["scribeq-secrets"].StringData, "sink-database-url")
		}, "env DATABASE_URL: Secret scribeq-secrets has no key sink-database-url"},
		{"MissingConfigMapKey", func(o *objects) {
			delete(o.configMaps["scribeq-config"].Data, "SCRIBEQ_NATS_URL")
		}, "env SCRIBEQ_NATS_URL: ConfigMap scribeq-config has no key SCRIBEQ_NATS_URL"},
		{"SpoolOnRootFS", func(o *objects) {
			c := &o.deployments["scribeq-ingress"].Spec.Template.Spec.Containers[0]
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "spool" })
		}, "SCRIBEQ_SPOOL_DIR=/var/lib/scribeq/spool is on the read-only root filesystem"},
		{"ServiceSelectsNothing", func(o *objects) {
			o.services["scribeq-ingress"].Spec.Selector["app.kubernetes.io/component"] = "ingres"
		}, "Service scribeq-ingress: selector"},
		{"ServiceTargetsUnknownPort", func(o *objects) {
			o.services["scribeq-ingress"].Spec.Ports[0].TargetPort = intstr.FromString("web")
		}, "Service scribeq-ingress: port http targets web"},
		{"IngressToMissingService", func(o *objects) {
			o.ingresses["scribeq-ingress"].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "ingress"
		}, "goes to Service ingress, which does not exist"},
		{"PDBSelectsNothing", func(o *objects) {
			o.pdbs["scribeq-sink"].Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "sinks"
		}, "PodDisruptionBudget scribeq-sink: selects no Deployment's pods"},
		{"PDBBlocksDrains", func(o *objects) {
			o.pdbs["scribeq-sink"].Spec.MinAvailable = ptr(intstr.FromInt32(2))
		}, "minAvailable 2 of 2 replicas of scribeq-sink would block every node drain"},
		{"NoPDB", func(o *objects) { delete(o.pdbs, "scribeq-ingress") },
			"Deployment scribeq-ingress: 2 replicas but no PodDisruptionBudget"},
		{"ScrapeWrongPort", func(o *objects) {
			o.deployments["scribeq-sink"].Spec.Template.Annotations["prometheus.io/port"] = "8080"
		}, `Deployment scribeq-sink: prometheus.io/port "8080"`},
		{"UnknownComponent", func(o *objects) {
			o.deployments["scribeq-sink"].Spec.Template.Labels["app.kubernetes.io/component"] = "writer"
		}, `no drain timeout known for component "writer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := mustDecode(t, ".")
			tc.mutate(o)
			probs := check(o)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("check did not report %q; it reported:\n%s", tc.want, strings.Join(probs, "\n"))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDecodeIsStrict proves that a misspelt field or an unexpected kind
// fails the build rather than being dropped, as kubectl apply would drop
// some of them silently.
func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"UnknownField", `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      terminationGracePeriod: 30
      containers: [{name: c, image: i}]
`, `unknown field "terminationGracePeriod"`},
		{"WrongType", `apiVersion: v1
kind: Service
metadata: {name: x}
spec: {ports: [{name: http, port: http}]}
`, "cannot unmarshal string"},
		{"UnknownKind", `apiVersion: example.com/v1
kind: Widget
metadata: {name: x}
`, "a kind this test does not know"},
		{"OldAPIVersion", `apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: x}
spec: {minAvailable: 1, selector: {matchLabels: {a: b}}}
`, "a kind this test does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, filepath.Join(dir, "kustomization.yaml"), "resources: [x.yaml]\n")
			write(t, filepath.Join(dir, "x.yaml"), tc.doc)
			rm, err := build(dir)
			if err == nil {
				_, err = decode(rm)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestImageOverride builds an overlay that pins a release, as an operator
// would, and checks that every container took it: a container naming the
// image differently would silently stay on :latest.
func TestImageOverride(t *testing.T) {
	t.Parallel()
	base, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "kustomization.yaml"), fmt.Sprintf(`resources: [%q]
namespace: transcription
images:
  - name: scribeq
    newName: registry.example.com/scribeq
    newTag: v1.2.3
`, rel))
	o := mustDecode(t, dir)
	const want = "registry.example.com/scribeq:v1.2.3"
	n := 0
	for _, spec := range podSpecs(o) {
		for _, c := range spec.Containers {
			n++
			if c.Image != want {
				t.Errorf("container %s: image %s, want %s", c.Name, c.Image, want)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d containers", n)
	}
	if len(check(o)) != 0 {
		t.Errorf("the overlay breaks invariants: %v", check(o))
	}
	// In the base, every container runs scribeq:latest.
	for name, spec := range podSpecs(mustDecode(t, ".")) {
		for _, c := range spec.Containers {
			if c.Image != "scribeq:latest" {
				t.Errorf("%s: container %s: image %s, want scribeq:latest", name, c.Name, c.Image)
			}
		}
	}
}

func podSpecs(o *objects) map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for n, d := range o.deployments {
		out["Deployment "+n] = &d.Spec.Template.Spec
	}
	for n, j := range o.jobs {
		out["Job "+n] = &j.Spec.Template.Spec
	}
	return out
}

// TestEnvIsRead checks every variable a container sets against what its
// command reads, as `scribeq <command> --help` lists them: a misspelt or
// renamed variable is otherwise ignored without a word.
func TestEnvIsRead(t *testing.T) {
	t.Parallel()
	o := mustDecode(t, ".")
	bin := buildScribeq(t)
	for where, spec := range podSpecs(o) {
		for _, c := range spec.Containers {
			if len(c.Args) == 0 {
				t.Errorf("%s: container %s has no command", where, c.Name)
				continue
			}
			reads := envOf(t, bin, c.Args[0])
			for _, e := range c.Env {
				if !reads[e.Name] {
					t.Errorf("%s: container %s sets %s, which `scribeq %s` does not read", where, c.Name, e.Name, c.Args[0])
				}
			}
		}
	}
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]map[string]bool{}
	envRef    = regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`)
)

// envOf lists the environment variables `scribeq cmd --help` names.
func envOf(t *testing.T, bin, cmd string) map[string]bool {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	if m, ok := helpCache[cmd]; ok {
		return m
	}
	c := exec.Command(bin, cmd, "--help")
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "COLUMNS=10000"}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("scribeq %s --help: %v\n%s", cmd, err, out)
	}
	m := map[string]bool{}
	for _, sm := range envRef.FindAllStringSubmatch(string(out), -1) {
		m[sm[1]] = true
	}
	if len(m) == 0 {
		t.Fatalf("scribeq %s --help names no environment variables:\n%s", cmd, out)
	}
	helpCache[cmd] = m
	return m
}

func buildScribeq(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "scribeq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/scribeq")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/scribeq: %v\n%s", err, out)
	}
	return bin
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
