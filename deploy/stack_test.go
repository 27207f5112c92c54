package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"

	"github.com/scribeq/scribeq/pkg/pgtest"
)

// TestComposeStack runs `docker compose --profile emulator up`, then
// `docker compose run --rm cli submit /audio`, without Docker: every
// service of docker-compose.yml becomes a process started from the loaded
// project's own command, environment, volumes and healthchecks, in
// depends_on order, waiting on each condition the way Compose does. Only
// the addresses change: service names and container ports become free
// loopback ports, volume mounts become folders, and Postgres is pgtest's.
// So a variable a command needs and the file lacks, a healthcheck that
// never passes, a wrong URL between services or a worker that does not
// stop within its stop_grace_period fails here.
func TestComposeStack(t *testing.T) {
	scribeq, natsServer := buildScribeq(t, true)
	// Every healthcheck of a scribeq service runs `scribeq healthcheck`.
	if out, err := exec.Command(scribeq, "healthcheck", "--help").CombinedOutput(); err != nil {
		t.Fatalf("`scribeq healthcheck` is missing (HealthcheckCmd not in cli.go?): %v\n%s", err, out)
	}
	audio := t.TempDir()
	wavs, _ := filepath.Glob(repo(t, "testdata", "audio", "*.wav"))
	if len(wavs) == 0 {
		t.Fatal("no testdata/audio/*.wav")
	}
	for _, w := range wavs {
		b, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(audio, filepath.Base(w)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := mustLoad(t, []string{"emulator", "cli"}, "AUDIO_DIR="+audio)

	st := &stack{
		t: t, p: p, scribeq: scribeq, natsServer: natsServer, dir: t.TempDir(),
		ports: map[hostPort]int{}, help: map[string]map[string]flag{},
		imageEnv: dockerfileEnv(t), workdir: dockerfileWorkdir(t),
	}
	for _, s := range p.Services {
		for _, c := range subcommands(s) {
			if isScribeq(s) && st.help[c] == nil {
				st.help[c] = commandFlags(t, scribeq, c)
			}
		}
	}
	st.dbURL = pgtest.NewDB(t)
	t.Cleanup(st.stopAll)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, name := range startOrder(t, p) {
		s := p.Services[name]
		switch {
		case name == "cli":
			continue // run below, as `docker compose run`
		case name == "postgres":
			// pgtest's server stands in; pg_isready runs inside the image only.
			continue
		case name == "nats":
			st.startNATS(ctx, s)
		case oneShot(s):
			if out, err := st.run(ctx, s, s.Command); err != nil {
				t.Fatalf("%s %v: %v\n%s", name, s.Command, err, out)
			}
			continue
		default:
			st.start(s, st.scribeq, st.rewriteAll(name, s.Command))
		}
		st.waitHealthy(ctx, s)
	}

	// docker compose run --rm cli submit --wait /audio
	cli := p.Services["cli"]
	out, err := st.run(ctx, cli, []string{"submit", "--batch", "compose-stack", "--wait", "--timeout", "2m", "/audio"})
	if err != nil {
		t.Fatalf("cli submit: %v\n%s%s", err, out, st.tails())
	}
	if !strings.Contains(out, fmt.Sprintf("%d queued", len(wavs))) {
		t.Fatalf("cli submit: want %d queued:\n%s", len(wavs), out)
	}

	// Every job went submitter -> emulator -> webhook -> ingress -> sink.
	conn, err := pgx.Connect(ctx, st.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var completed, all, transcripts int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FROM jobs`).Scan(&completed, &all); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM transcripts`).Scan(&transcripts); err != nil {
		t.Fatal(err)
	}
	if completed != len(wavs) || all != len(wavs) || transcripts != len(wavs) {
		t.Fatalf("jobs %d, completed %d, transcripts %d: want %d each%s", all, completed, transcripts, len(wavs), st.tails())
	}
	if out, err := st.run(ctx, cli, cli.Command); err != nil || !strings.Contains(out, "completed") {
		t.Fatalf("cli %v: %v\n%s", cli.Command, err, out)
	}

	for _, pr := range st.procs {
		if pr.exited() {
			t.Errorf("%s exited while the stack ran: %v%s", pr.name, pr.err, st.tails())
		}
	}
	// docker compose down: SIGTERM, then SIGKILL after stop_grace_period.
	st.stopAll()
}

type hostPort struct {
	svc  string
	port int
}

type stack struct {
	t                   *testing.T
	p                   *types.Project
	scribeq, natsServer string
	dir                 string
	dbURL               string
	ports               map[hostPort]int
	help                map[string]map[string]flag
	imageEnv            map[string]string
	workdir             string
	procs               []*proc
	stopped             bool
}

type proc struct {
	name  string
	svc   types.ServiceConfig
	cmd   *exec.Cmd
	log   string
	done  chan struct{}
	err   error
	grace time.Duration
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// local is the loopback port standing in for a service's container port.
func (st *stack) local(svc string, port int) int {
	k := hostPort{svc, port}
	if p, ok := st.ports[k]; ok {
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	st.ports[k] = p
	return p
}

var hostPortRE = regexp.MustCompile(`([A-Za-z0-9_.-]*):(\d{2,5})\b`)

// rewrite turns a value as the container sees it into one for this host:
// service:port and listen addresses become loopback ports, the Postgres
// URL becomes pgtest's, paths under a mount become its folder here.
func (st *stack) rewrite(svc, v string) string {
	if u, err := url.Parse(v); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Hostname() == "postgres" {
		return st.dbURL
	}
	v = hostPortRE.ReplaceAllStringFunc(v, func(m string) string {
		sub := hostPortRE.FindStringSubmatch(m)
		host, port := sub[1], sub[2]
		n, _ := strconv.Atoi(port)
		switch {
		case host == "" || host == "127.0.0.1" || host == "localhost" || host == "0.0.0.0":
			return fmt.Sprintf("127.0.0.1:%d", st.local(svc, n))
		case st.p.Services[host].Name != "":
			return fmt.Sprintf("127.0.0.1:%d", st.local(host, n))
		}
		return m
	})
	mounts := st.mounts(svc)
	targets := make([]string, 0, len(mounts))
	for k := range mounts {
		targets = append(targets, k)
	}
	// The longest first: /var/lib/scribeq/spool before /var/lib/scribeq.
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, target := range targets {
		if v == target || strings.HasPrefix(v, target+"/") {
			return mounts[target] + strings.TrimPrefix(v, target)
		}
	}
	return v
}

func (st *stack) rewriteAll(svc string, vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = st.rewrite(svc, v)
	}
	return out
}

// mounts maps a service's container paths to folders here: its volumes,
// and for scribeq services the image's working directory.
func (st *stack) mounts(svc string) map[string]string {
	s := st.p.Services[svc]
	m := map[string]string{}
	if isScribeq(s) {
		m[st.workdir] = st.mkdir("root", svc)
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			m[v.Target] = st.mkdir("volumes", v.Source)
		case types.VolumeTypeBind:
			m[v.Target] = v.Source
		}
	}
	return m
}

func (st *stack) mkdir(parts ...string) string {
	d := filepath.Join(append([]string{st.dir}, parts...)...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		st.t.Fatal(err)
	}
	return d
}

// env is a service's environment here: the image's ENV, then the
// service's, rewritten; nothing of the test's own.
func (st *stack) env(s types.ServiceConfig) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + st.mkdir("home", s.Name),
		"TMPDIR=" + st.mkdir("tmp", s.Name),
	}
	if isScribeq(s) {
		for k, v := range st.imageEnv {
			env = append(env, k+"="+st.rewrite(s.Name, v))
		}
	}
	for k, v := range s.Environment {
		if v != nil {
			env = append(env, k+"="+st.rewrite(s.Name, *v))
		}
	}
	return env
}

func (st *stack) start(s types.ServiceConfig, path string, args []string) *proc {
	st.t.Helper()
	pr := &proc{
		name: s.Name, svc: s, log: filepath.Join(st.mkdir("logs"), s.Name+".log"),
		done: make(chan struct{}), grace: 10 * time.Second,
	}
	if s.StopGracePeriod != nil {
		pr.grace = time.Duration(*s.StopGracePeriod)
	}
	f, err := os.Create(pr.log)
	if err != nil {
		st.t.Fatal(err)
	}
	pr.cmd = exec.Command(path, args...)
	pr.cmd.Env = st.env(s)
	pr.cmd.Dir = st.mkdir("root", s.Name)
	if isScribeq(s) {
		pr.cmd.Dir = st.rewrite(s.Name, st.workdir)
	}
	pr.cmd.Stdout, pr.cmd.Stderr = f, f
	pr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := pr.cmd.Start(); err != nil {
		_ = f.Close()
		st.t.Fatalf("start %s: %v", s.Name, err)
	}
	go func() {
		pr.err = pr.cmd.Wait()
		_ = f.Close()
		close(pr.done)
	}()
	st.procs = append(st.procs, pr)
	return pr
}

// run is a one-off container: the service's environment and mounts, args
// as its command, to completion. A service of the stack exiting meanwhile
// fails the test at once rather than when the command gives up.
func (st *stack) run(ctx context.Context, s types.ServiceConfig, args []string) (string, error) {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, st.scribeq, st.rewriteAll(s.Name, args)...)
	cmd.Env = st.env(s)
	cmd.Dir = st.rewrite(s.Name, st.workdir)
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return out.String(), err
		case <-tick.C:
			for _, pr := range st.procs {
				if pr.exited() {
					cancel()
					<-done
					st.t.Fatalf("%s exited while %s %v ran: %v\n%s\n--- %s output:\n%s",
						pr.name, s.Name, args, pr.err, tail(pr.log, 20), s.Name, out.String())
				}
			}
		}
	}
}

// startNATS runs nats-server with the compose command and its nats.conf;
// only the listen addresses and the store folder are overridden by flags.
func (st *stack) startNATS(ctx context.Context, s types.ServiceConfig) {
	t := st.t
	if len(s.Command) == 0 || s.Command[0] != "nats-server" {
		t.Fatalf("nats: command %v does not start nats-server", s.Command)
	}
	conf := natsConfig(t, st.p)
	store := st.rewrite("nats", conf.StoreDir)
	if store == conf.StoreDir {
		t.Fatalf("nats: store_dir %s is on no volume", conf.StoreDir)
	}
	// nats-server refuses -sd next to a store_dir in the file, so the
	// test runs a copy of nats.conf with only that value changed; the
	// ports are overridden by flags, which take precedence over the file.
	args := st.rewriteAll("nats", s.Command[1:])
	i := slices.Index(args, "--config") + 1
	orig, err := os.ReadFile(args[i])
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*store_dir\s*[:=]\s*)"?` + regexp.QuoteMeta(conf.StoreDir) + `"?\s*$`)
	if len(re.FindAllIndex(orig, -1)) != 1 {
		t.Fatalf("nats: no single `store_dir: %s` line in %s to point elsewhere", conf.StoreDir, args[i])
	}
	args[i] = filepath.Join(st.dir, "nats.conf")
	if err := os.WriteFile(args[i], re.ReplaceAll(orig, []byte("${1}"+strconv.Quote(store))), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append(args, "-a", "127.0.0.1", "-p", strconv.Itoa(st.local("nats", conf.Port)),
		"-m", strconv.Itoa(st.local("nats", conf.HTTPPort)))
	st.start(s, st.natsServer, args)
	st.waitHealthy(ctx, s)

	// What the running server says about its JetStream.
	var varz struct {
		JetStream struct {
			Config struct {
				StoreDir   string `json:"store_dir"`
				SyncAlways bool   `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	body, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/varz", st.local("nats", conf.HTTPPort)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &varz); err != nil {
		t.Fatalf("nats /varz: %v", err)
	}
	if !varz.JetStream.Config.SyncAlways {
		t.Error("the running nats-server does not sync always")
	}
	if !strings.HasPrefix(varz.JetStream.Config.StoreDir, store) {
		t.Errorf("nats store_dir %q, want under %s", varz.JetStream.Config.StoreDir, store)
	}
}

// waitHealthy runs the service's healthcheck until it passes, as Compose
// does before a service_healthy dependent starts.
func (st *stack) waitHealthy(ctx context.Context, s types.ServiceConfig) {
	t := st.t
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 {
		return
	}
	test := st.rewriteAll(s.Name, hc.Test[1:])
	timeout := 5 * time.Second
	if hc.Timeout != nil {
		timeout = time.Duration(*hc.Timeout)
	}
	var probe func(context.Context) error
	switch {
	case test[0] == binInImage:
		if u := healthURL(hc.Test); u != nil && !st.servesOn(s, u.Port()) {
			// The port is SCRIBEQ_METRICS_ADDR's, which this build's
			// command does not read yet (metrics pending).
			t.Logf("%s: healthcheck %v not run: `scribeq %s` does not read SCRIBEQ_METRICS_ADDR yet", s.Name, hc.Test, s.Command[0])
			return
		}
		probe = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, st.scribeq, test[1:]...)
			cmd.Env = st.env(s)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	case healthURL(test) != nil:
		// wget or curl inside another image: the same GET from here.
		probe = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err := httpGet(ctx, healthURL(test).String())
			return err
		}
	default:
		t.Logf("%s: healthcheck %v runs inside its image only", s.Name, hc.Test)
		return
	}
	var pr *proc
	for _, p := range st.procs {
		if p.name == s.Name {
			pr = p
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for {
		if pr != nil && pr.exited() {
			t.Fatalf("%s exited before it was healthy: %v\n%s", s.Name, pr.err, tail(pr.log, 30))
		}
		if last = probe(ctx); last == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: healthcheck %v never passed: %v%s", s.Name, hc.Test, last, st.tails())
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// servesOn tells whether the service's command reads the *_ADDR variable
// that sets the given port.
func (st *stack) servesOn(s types.ServiceConfig, port string) bool {
	for k, v := range s.Environment {
		if v == nil || !strings.HasSuffix(k, "_ADDR") {
			continue
		}
		if _, p, err := net.SplitHostPort(*v); err == nil && p == port {
			return reads(st.help, subcommands(s), k)
		}
	}
	return false
}

// stopAll stops what runs, dependents first, as `docker compose down`:
// SIGTERM, and a failure if a process needs longer than its
// stop_grace_period or exits non-zero.
func (st *stack) stopAll() {
	if st.stopped {
		return
	}
	st.stopped = true
	for i := len(st.procs) - 1; i >= 0; i-- {
		pr := st.procs[i]
		if pr.exited() {
			continue
		}
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-pr.done:
			if pr.err != nil && isScribeq(pr.svc) {
				st.t.Errorf("%s: exit after SIGTERM: %v\n%s", pr.name, pr.err, tail(pr.log, 20))
			}
		case <-time.After(pr.grace):
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
			<-pr.done
			st.t.Errorf("%s did not stop within its stop_grace_period %s of SIGTERM\n%s", pr.name, pr.grace, tail(pr.log, 20))
		}
	}
}

func (st *stack) tails() string {
	var b strings.Builder
	for _, pr := range st.procs {
		fmt.Fprintf(&b, "\n--- %s:\n%s", pr.name, tail(pr.log, 15))
	}
	return b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, nil
}

// startOrder is an order in which every service comes after what it
// depends on, as Compose starts them; a cycle fails the test.
func startOrder(t testing.TB, p *types.Project) []string {
	t.Helper()
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			t.Fatalf("depends_on cycle: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return
		}
		state[name] = 1
		deps := slices.Sorted(func(yield func(string) bool) {
			for d := range p.Services[name].DependsOn {
				if _, ok := p.Services[d]; ok && !yield(d) {
					return
				}
			}
		})
		for _, d := range deps {
			visit(d, append(path, name))
		}
		state[name] = 2
		order = append(order, name)
	}
	names := p.ServiceNames()
	sort.Strings(names)
	for _, n := range names {
		visit(n, nil)
	}
	return order
}

// dockerfileWorkdir is the final image's WORKDIR.
func dockerfileWorkdir(t testing.TB) string {
	t.Helper()
	ins := parseDockerfile(t)
	final := ins[len(ins)-1].Stage
	wd := "/"
	for _, i := range ins {
		if i.Stage == final && i.Cmd == "WORKDIR" {
			wd = i.Args
		}
	}
	return wd
}
