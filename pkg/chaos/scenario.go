package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scribeq/scribeq/pkg/pgtest"
)

// Environment variables that size and steer a run.
const (
	// EnvJobs: empty for each scenario's CI size, "full" for its full size
	// (make chaos), or a number of jobs for every scenario.
	EnvJobs = "CHAOS_JOBS"
	// EnvDir keeps every scenario's logs and NATS store under this folder
	// (one subfolder per scenario) instead of a temporary one.
	EnvDir = "CHAOS_DIR"
	// EnvReport appends the table's lines to this file as well as stdout.
	EnvReport = "CHAOS_REPORT"
	// EnvSubmit is "cli" (default: the real `scribeq submit` process) or
	// "intake" (pkg/intake in the test process).
	EnvSubmit = "CHAOS_SUBMIT"
	// EnvSeed fixes the random choices (which submitter dies, when); the
	// seed of every run is logged.
	EnvSeed = "CHAOS_SEED"
)

// HarnessApp is the application_name of the harness's own Postgres sessions.
const HarnessApp = "chaos-harness"

// Scenario is one fault and what it promises.
type Scenario struct {
	Name string
	// CIJobs and FullJobs size the load (see EnvJobs).
	CIJobs, FullJobs int
	// Configure adjusts the cluster for a load of jobs before it starts
	// (pacing, more submitters, emulator fault flags, a reconciler...).
	Configure func(c *Config, jobs int)
	// Fault injects the faults from the moment the load starts until ctx
	// ends, recording each one with Run.Fault. When ctx ends it must leave
	// every process it touched running (the helpers do).
	Fault func(ctx context.Context, r *Run) error
	// MinFaults is the fewest faults that make the run count: fewer and the
	// scenario fails, since it proved nothing. Faults the harness recorded
	// and faults the emulator injected both count. Default 1 when Fault is
	// set.
	MinFaults int
	// FaultUntil stops the faults once this fraction of the jobs is
	// terminal, so the run ends on a whole pipeline. Default 0.9.
	FaultUntil float64
	// MaxFaultTime caps how long faults go on. Default 10 minutes.
	MaxFaultTime time.Duration
	// Deadline is how long after the last fault every job must be
	// terminal. Default 5 minutes plus 30 ms per job.
	Deadline time.Duration
	// MaxTail, when set, fails the run if the last job became terminal
	// longer than this after the last fault (the issue asks 2 minutes).
	MaxTail time.Duration
	// AllowFailed lets jobs fail (poison jobs, provider 4xx); by default a
	// failed job fails the scenario.
	AllowFailed bool
	// Explains reports whether a job billed more than once is accounted for
	// by a recorded fault (a kill between ElevenLabs' acceptance and our
	// record). Unexplained duplicate convert calls fail the scenario; nil
	// explains none.
	Explains func(d DuplicateCall, faults []FaultRecord) bool
	// PrivatePostgres gives the scenario a Postgres server of its own
	// (Run.Postgres), so that it may crash and restart it.
	PrivatePostgres bool
	// Parallel lets the scenario share the machine with other Parallel
	// ones: for paced loads, which mostly wait on the emulator. Its
	// seconds are then a little less its own.
	Parallel bool
	// Verify checks what else the scenario promises, once every job is
	// terminal (e.g. that the emulator injected each kind of fault, or
	// that webhooks were really lost). An error fails the scenario.
	Verify func(ctx context.Context, r *Run, rep *Report) error
}

func (s Scenario) withDefaults() Scenario {
	if s.Fault != nil && s.MinFaults == 0 {
		s.MinFaults = 1
	}
	if s.FaultUntil <= 0 {
		s.FaultUntil = 0.9
	}
	if s.MaxFaultTime <= 0 {
		s.MaxFaultTime = 10 * time.Minute
	}
	return s
}

// Jobs is the load size for this run (see EnvJobs).
func (s Scenario) Jobs() (int, error) {
	switch v := os.Getenv(EnvJobs); v {
	case "", "ci":
		return positive(s.CIJobs, s.Name+".CIJobs")
	case "full":
		return positive(s.FullJobs, s.Name+".FullJobs")
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("chaos: %s=%q: want a number of jobs, \"ci\" or \"full\"", EnvJobs, v)
		}
		return n, nil
	}
}

func positive(n int, what string) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("chaos: %s is %d; want a number of jobs", what, n)
	}
	return n, nil
}

// FaultRecord is one injected fault.
type FaultRecord struct {
	At     time.Time
	What   string // "kill submitter-2", "kill sink"...
	Detail string
}

// Run is a scenario in progress, handed to its Fault function.
type Run struct {
	T       testing.TB
	Cluster *Cluster
	DB      *pgxpool.Pool
	// Postgres is the private server, when the scenario asked for one.
	Postgres *Postgres
	// Rand is seeded from EnvSeed or the clock; the seed is logged. Only
	// the Fault function's goroutine may use it.
	Rand *rand.Rand

	mu     sync.Mutex
	faults []FaultRecord
	extra  []Submitted
	values map[string]any
}

// AddJobs adds jobs queued outside the load (poison jobs, say): the run
// waits for them and counts them like the load's.
func (r *Run) AddJobs(jobs ...Submitted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra = append(r.extra, jobs...)
}

func (r *Run) jobs(load []Submitted) []Submitted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]Submitted(nil), load...), r.extra...)
}

// Set keeps a value for the scenario's Verify (what a Fault queued...).
func (r *Run) Set(key string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil {
		r.values = map[string]any{}
	}
	r.values[key] = v
}

// Get returns what Set kept, or nil.
func (r *Run) Get(key string) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.values[key]
}

// Fault records that a fault was injected now.
func (r *Run) Fault(what, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, FaultRecord{At: time.Now(), What: what, Detail: detail})
}

// Faults returns the faults recorded so far.
func (r *Run) Faults() []FaultRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FaultRecord(nil), r.faults...)
}

// Between returns a random duration in [lo, hi].
func (r *Run) Between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Rand.Int64N(int64(hi-lo)+1))
}

// Every calls f after a random pause in [lo, hi], again and again, until ctx
// ends. An error from f ends it.
func Every(ctx context.Context, r *Run, lo, hi time.Duration, f func() error) error {
	for {
		t := time.NewTimer(r.Between(lo, hi))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if err := f(); err != nil {
			return err
		}
	}
}

// KillRestart kills p with SIGKILL, records it, and starts it again at
// once, waiting until it is ready.
func (r *Run) KillRestart(ctx context.Context, p *Proc, detail string) error {
	if err := p.Kill(); err != nil {
		return err
	}
	r.Fault("kill "+p.Name, detail)
	if err := p.Start(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return r.Cluster.WaitReady(wctx, p)
}

// KillFor kills p with SIGKILL, records it, keeps it down for down, then
// starts it again and waits until it is ready. The wait is not cut short
// by ctx: a fault always ends with the process back.
func (r *Run) KillFor(ctx context.Context, p *Proc, down time.Duration, detail string) error {
	if err := p.Kill(); err != nil {
		return err
	}
	r.Fault("kill "+p.Name, detail)
	t := time.NewTimer(down)
	<-t.C
	if err := p.Start(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return r.Cluster.WaitReady(wctx, p)
}

var table struct {
	once sync.Once
	mu   sync.Mutex
}

// PrintRow prints the table's header (once per test binary) and f's line
// to stdout, and appends them to EnvReport's file when it is set.
func PrintRow(f Figures) {
	table.mu.Lock()
	defer table.mu.Unlock()
	var out []io.Writer
	out = append(out, os.Stdout)
	if path := os.Getenv(EnvReport); path != "" {
		if file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			defer func() { _ = file.Close() }()
			out = append(out, file)
		} else {
			fmt.Fprintf(os.Stderr, "chaos: %s: %v\n", EnvReport, err)
		}
	}
	w := io.MultiWriter(out...)
	table.once.Do(func() { fmt.Fprintln(w, Header()) })
	fmt.Fprintln(w, f.Line())
}

// RunScenario runs sc end to end: starts a cluster on a fresh database
// (pgtest.NewDB, or a private server), submits the load, injects the
// faults, waits until every job is terminal, checks, prints the figures
// line, and fails t when a promise is broken. It returns the report.
// The test binary's TestMain must call pgtest.Main.
func RunScenario(t *testing.T, bin Binaries, sc Scenario) *Report {
	t.Helper()
	sc = sc.withDefaults()
	n, err := sc.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	deadline := sc.Deadline
	if deadline <= 0 {
		deadline = 5*time.Minute + time.Duration(n)*30*time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), sc.MaxFaultTime+deadline+15*time.Minute)
	defer cancel()

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(EnvSeed); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("chaos: %s=%q: %v", EnvSeed, v, err)
		}
	}
	t.Logf("%s: %d jobs, seed %d", sc.Name, n, seed)

	dir := scenarioDir(t, sc.Name)
	load, err := MakeLoad(filepath.Join(dir, "load"), n, seed)
	if err != nil {
		t.Fatal(err)
	}
	var pg *Postgres
	var databaseURL string
	if sc.PrivatePostgres {
		pg = StartPostgres(t, ctx)
		databaseURL = pg.URL
	} else {
		databaseURL = pgtest.NewDB(t)
	}
	cfg := Config{Bin: bin, DatabaseURL: databaseURL, Dir: filepath.Join(dir, "cluster")}
	if sc.Configure != nil {
		sc.Configure(&cfg, n)
	}
	c := Start(t, ctx, cfg)
	pcfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		t.Fatal("chaos: cannot parse the database URL")
	}
	// Named, so that a scenario terminating the workers' backends spares it.
	pcfg.ConnConfig.RuntimeParams["application_name"] = HarnessApp
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatalf("chaos: connect to postgres: %v", err)
	}
	defer pool.Close()
	r := &Run{T: t, Cluster: c, DB: pool, Postgres: pg, Rand: rand.New(rand.NewPCG(seed, seed>>1|1))}
	fail := func(format string, args ...any) {
		t.Helper()
		qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t.Fatalf("%s: %s\nunexpected exits: %v\nqueue: %s%s", sc.Name, fmt.Sprintf(format, args...),
			c.Unexpected(), c.QueueState(qctx), c.Tails(30))
	}

	// The load and the faults start together.
	start := time.Now()
	faultCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	faultErr := make(chan error, 1)
	if sc.Fault != nil {
		go func() { faultErr <- sc.Fault(faultCtx, r) }()
	} else {
		faultErr <- nil
	}
	submit := c.SubmitCLI
	if os.Getenv(EnvSubmit) == "intake" {
		submit = c.SubmitIntake
	}
	jobs, err := submit(ctx, load, "chaos-"+sc.Name)
	if err != nil {
		stopFaults()
		<-faultErr
		fail("submit: %v", err)
	}
	if len(jobs) != n {
		stopFaults()
		<-faultErr
		fail("submit queued %d jobs, want %d", len(jobs), n)
	}
	submitted := time.Since(start)
	ids := func() []string {
		all := r.jobs(jobs)
		out := make([]string, len(all))
		for i, j := range all {
			out[i] = j.JobID
		}
		return out
	}

	// Faults go on until most jobs are through (or the cap), then stop, so
	// the end of the run shows recovery, not the next fault.
	var lastFault time.Time
	stop := func() {
		stopFaults()
		if err := <-faultErr; err != nil {
			fail("fault injection: %v", err)
		}
		lastFault = time.Now()
		if fs := r.Faults(); len(fs) > 0 {
			lastFault = fs[len(fs)-1].At
		}
	}
	done := 0
	var dbErr error // the last failed count, for the timeout message
	progress := time.Now()
	err = Until(ctx, "faults", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		select {
		case err := <-faultErr:
			faultErr <- err // for stop(), which reports it
			if err != nil {
				return true, nil
			}
		default:
		}
		all := ids()
		if n, err := Terminal(ctx, pool, all); err != nil {
			dbErr = err // Postgres may be down on purpose; the deadline decides
		} else {
			done = n
		}
		return float64(done) >= sc.FaultUntil*float64(len(all)) || time.Since(start) > sc.MaxFaultTime, nil
	})
	stop()
	if err != nil {
		fail("%v", err)
	}
	faultsDone := time.Now()

	waitCtx, cancelWait := context.WithDeadline(ctx, lastFault.Add(deadline))
	defer cancelWait()
	waitErr := Until(waitCtx, "all jobs terminal", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		all := ids()
		if n, err := Terminal(ctx, pool, all); err != nil {
			dbErr = err
		} else {
			done = n
		}
		if time.Since(progress) > 30*time.Second {
			t.Logf("%s: %d of %d jobs terminal after %s", sc.Name, done, len(all), time.Since(start).Round(time.Second))
			progress = time.Now()
		}
		return done == len(all), nil
	})
	end := time.Now()

	// A job can be terminal while work for it goes on: its webhook beat a
	// stalled convert answer, which the submitter still awaits and will
	// then record. Check once the queues are quiet, so that such calls are
	// in the figures.
	settled := "the queues settled at once"
	if waitErr == nil {
		sctx, scancel := context.WithTimeout(ctx, 3*time.Minute)
		err := Until(sctx, "queues settled", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
			ok, err := c.Settled(ctx)
			return ok && err == nil, nil
		})
		scancel()
		if err != nil {
			settled = "the queues did not settle: " + c.QueueState(ctx)
		} else if d := time.Since(end); d > time.Second {
			settled = fmt.Sprintf("the queues settled %s after the last job", d.Round(100*time.Millisecond))
		}
	}

	lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
	defer lcancel()
	ledger, err := c.Ledger(lctx)
	if err != nil {
		fail("%v", err)
	}
	rep, err := Check(lctx, pool, ledger, r.jobs(jobs), load)
	if err != nil {
		fail("%v", err)
	}
	rep.Scenario = sc.Name
	rep.Seconds = end.Sub(start).Seconds()
	if rep.Stats, err = c.Stats(lctx); err != nil {
		fail("%v", err)
	}
	PrintRow(rep.Figures)

	faults := r.Faults()
	tail := end.Sub(lastFault)
	recovery := "no faults"
	if len(faults) > 0 {
		recovery = fmt.Sprintf("%d faults until %s; the last job terminal %s after the last fault",
			len(faults), faultsDone.Sub(start).Round(time.Second), tail.Round(100*time.Millisecond))
	}
	t.Logf("%s: submit took %s; %s; %s\n%s\nfaults: %s",
		sc.Name, submitted.Round(100*time.Millisecond), recovery, settled, rep.Summary(), describeFaults(faults))

	var broken []string
	if waitErr != nil {
		msg := fmt.Sprintf("not every job terminal within %s of the last fault", deadline)
		if dbErr != nil {
			msg += fmt.Sprintf(" (last failed count: %v)", dbErr)
		}
		broken = append(broken, msg)
	}
	if rep.Lost > 0 {
		broken = append(broken, fmt.Sprintf("%d jobs lost", rep.Lost))
	}
	if rep.DuplicateRows > 0 {
		broken = append(broken, fmt.Sprintf("%d duplicate transcript rows", rep.DuplicateRows))
	}
	if len(rep.Mismatched) > 0 {
		broken = append(broken, fmt.Sprintf("%d jobs hold another audio's transcript", len(rep.Mismatched)))
	}
	if rep.Failed > 0 && !sc.AllowFailed {
		broken = append(broken, fmt.Sprintf("%d jobs failed", rep.Failed))
	}
	unexplained := 0
	for _, d := range rep.Duplicates {
		if sc.Explains == nil || !sc.Explains(d, faults) {
			unexplained++
		}
	}
	if unexplained > 0 {
		broken = append(broken, fmt.Sprintf("%d jobs billed more than once with no fault to explain it", unexplained))
	}
	if injected := len(faults) + rep.Injected(); injected < sc.MinFaults {
		broken = append(broken, fmt.Sprintf("only %d faults injected, want at least %d: the run proved nothing", injected, sc.MinFaults))
	}
	if sc.Verify != nil {
		if err := sc.Verify(lctx, r, rep); err != nil {
			broken = append(broken, err.Error())
		}
	}
	if sc.MaxTail > 0 && waitErr == nil && tail > sc.MaxTail {
		broken = append(broken, fmt.Sprintf("last job terminal %s after the last fault, want within %s", tail.Round(time.Second), sc.MaxTail))
	}
	if u := c.Unexpected(); len(u) > 0 {
		broken = append(broken, "processes exited on their own: "+strings.Join(u, "; "))
	}
	for _, p := range c.Procs() {
		if !p.Running() {
			broken = append(broken, p.Name+" is not running at the end")
		}
	}
	if len(broken) > 0 {
		t.Errorf("%s: %s\n%s\nqueue: %s%s", sc.Name, strings.Join(broken, "; "), rep.Summary(), c.QueueState(lctx), c.Tails(30))
	}
	return rep
}

// scenarioDir is where a scenario keeps its load, logs and NATS store:
// under EnvDir when set (kept), else a temporary folder that is removed
// when the scenario passes and kept, with its path logged, when it fails.
func scenarioDir(t *testing.T, name string) string {
	t.Helper()
	if keep := os.Getenv(EnvDir); keep != "" {
		dir := filepath.Join(keep, name)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "scribeq-chaos-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after every process has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: logs, NATS store and load kept in %s", name, dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

func describeFaults(fs []FaultRecord) string {
	if len(fs) == 0 {
		return "none"
	}
	// Faults that come by the hundred (forged webhooks) are summed up by
	// kind and outcome; rarer ones are listed with their times.
	type group struct {
		n           int
		first, last time.Time
	}
	byKind := map[string]*group{}
	var order []string
	for _, f := range fs {
		k := f.What
		if f.Detail != "" {
			k += " (" + f.Detail + ")"
		}
		g := byKind[k]
		if g == nil {
			g = &group{first: f.At}
			byKind[k] = g
			order = append(order, k)
		}
		g.n++
		g.last = f.At
	}
	if len(fs) <= 20 {
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = f.At.Format("15:04:05.0") + " " + f.What
			if f.Detail != "" {
				parts[i] += " (" + f.Detail + ")"
			}
		}
		return strings.Join(parts, "; ")
	}
	parts := make([]string, len(order))
	for i, k := range order {
		g := byKind[k]
		parts[i] = fmt.Sprintf("%s ×%d (%s–%s)", k, g.n, g.first.Format("15:04:05"), g.last.Format("15:04:05"))
	}
	return strings.Join(parts, "; ")
}
