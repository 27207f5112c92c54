// Package chaos is scribeq's fault suite: it runs the pipeline as real OS
// processes, injects faults while they work through a load, and checks with
// SQL and the emulator's ledger that nothing was lost and nothing billed
// twice. Test-only: production code must never import it.
//
// # Running it
//
// The scenarios sit behind the chaos build tag, so `go test ./...` runs only
// the harness's own quick tests:
//
//	go test -tags chaos -count=1 -v -timeout 30m -run TestChaos ./pkg/chaos/                     # CI sizes
//	CHAOS_JOBS=full go test -tags chaos -count=1 -v -timeout 3h -run TestChaos ./pkg/chaos/     # make chaos
//	go test -tags chaos -count=1 -v -run 'TestChaos/kill_sink$' ./pkg/chaos/                     # one scenario
//
// Postgres comes from pgtest (TEST_DATABASE_URL, else Docker, else a
// throwaway local cluster) with a fresh database per scenario; pg_restart
// starts a private server (pkg/localpg) because it crashes it. The test
// builds `scribeq` (./cmd/scribeq) and `nats-server` (the module go.mod
// requires, never a distribution's) once into a temporary folder.
//
// Environment:
//
//	CHAOS_JOBS    empty: each scenario's CI size; "full": its full size;
//	              a number: that many jobs in every scenario
//	CHAOS_DIR     keep logs, NATS store and load under DIR/<scenario>
//	              (otherwise they are kept only when a scenario fails; the
//	              failure says where)
//	CHAOS_REPORT  also append the table to this file
//	CHAOS_SUBMIT  "cli" (default: the real `scribeq submit DIR` process) or
//	              "intake" (pkg/intake inside the test)
//	CHAOS_SEED    repeat a run's random choices (its seed is logged)
//	CHAOS_RACE=1  build scribeq with the race detector
//
// The busy scenarios run one at a time; the paced ones (Scenario.Parallel),
// which mostly wait on the emulator, then run -parallel at a time (default
// GOMAXPROCS). Pass -parallel 1 to give each the machine to itself.
//
// # What a scenario does
//
// A Cluster is a nats-server process (its own config file: JetStream with
// sync_interval: always, a random loopback port), `scribeq emulator`,
// `scribeq ingress`, two `scribeq submitter`s and `scribeq sink` (and
// `scribeq reconciler` when configured), configured through environment
// variables, each logging JSON to logs/<name>.log. The harness can SIGKILL,
// SIGTERM, SIGSTOP/SIGCONT and restart any of them; everything is stopped
// when the test ends (workers first, NATS last).
//
// RunScenario writes N small WAV files with distinct bytes, submits them
// with `scribeq submit`, and starts the scenario's Fault function at the
// same moment. Faults go on until 90% of the jobs are terminal (or a cap),
// then stop, so the end of a run shows recovery. It then waits, polling
// Postgres, until every job is completed or failed (deadline counted from
// the last fault), then until both durable consumers have nothing pending
// or unacknowledged (a job can complete by its webhook while its convert
// answer is still stalled), and checks:
//
//	jobs                     jobs queued (by submit, plus any a scenario adds)
//	completed, failed        their states in Postgres
//	lost                     queued but neither completed nor failed at the end
//	duplicate_rows           transcript rows beyond the first for a job
//	duplicate_convert_calls  accepted convert calls beyond the first for a
//	                         job, from GET /emulator/ledger: audio billed twice
//	seconds                  from the start of submit until every job was terminal
//
// Each scenario prints one line under a header printed once:
//
//	scenario             jobs completed failed lost duplicate_rows duplicate_convert_calls seconds
//	baseline             1000      1000      0    0              0                       0     5.1
//
// A scenario fails when lost > 0, duplicate_rows > 0, a completed job holds
// another audio's transcript, a job failed (unless the scenario allows it),
// a duplicate convert call is not explained by a recorded fault (a kill that
// landed between ElevenLabs' acceptance and our record), fewer faults were
// injected than the scenario needs to prove anything, its own Verify fails,
// or a process exited without the harness asking. The failure message
// carries the consumers' state and the last lines of every process's log;
// -v also logs the faults, the ledger's and the emulator's counts, failure
// reasons, and how long after the last fault the last job finished.
//
// # The scenarios (scenarios_test.go)
//
//	baseline         no fault
//	kill_submitter   kill -9 a random one of two submitters every 10–20 s, restart it
//	kill_sink        kill -9 the sink while it holds unacked events, every 15–25 s
//	provider_faults  5% 500, 1% each kind of 429, 1% accepted-then-reset, 1% 30 s stalls
//	webhook_chaos    duplicated, reordered, late (5–30 s), before-the-answer webhooks,
//	                 metadata as a string
//	poison_jobs      jobs whose audio is missing or whose model is refused (must
//	                 fail), undecodable and invalid messages (must be dead letters)
//	kill_ingress     kill -9 the ingress every 15 s, 3 s down: the reconciler
//	                 recovers every lost webhook
//	kill_nats        kill -9 nats-server every 20–30 s, 2–5 s down, same store
//	forged_webhooks  ~50 forged webhooks a second (wrong secret, flipped byte, stale,
//	                 future, edited replay, oversized, signed non-JSON, no or bad
//	                 header) naming real jobs: all refused with a 4xx, 0 rows
//	pg_backends      pg_terminate_backend on every worker session, in 2 s bursts
//	pg_restart       pg_ctl stop -m immediate every 15–25 s, 2–5 s down, restart
//
// Paced scenarios make the emulator take a second per job and size the
// shared concurrency limit so that the load is in flight for about a minute
// whatever its size: faults must land while work is in progress.
//
// # Adding a scenario
//
// A Scenario is a name, CI and full sizes, an optional Configure (pacing,
// more submitters, emulator --fault-* flags in EmulatorArgs, a reconciler,
// ingress flags in IngressArgs, a private Postgres) and a Fault function
// that records each fault with Run.Fault; Run.KillRestart, Run.KillFor,
// Every, Until, Cluster.SetFaults (PUT /emulator/faults), Cluster.Stats,
// Cluster.ConsumerInfo, Cluster.PublishPoison, Forge and TerminateBackends
// are the building blocks, and Verify checks what else it promises. Add it
// to the list in scenarios_test.go.
package chaos
