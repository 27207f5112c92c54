package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scribeq/scribeq/pkg/emulator"
)

// Figures is the one line a scenario prints.
type Figures struct {
	Scenario  string
	Jobs      int // queued by intake
	Completed int
	Failed    int
	// Lost jobs were queued by intake but are neither completed nor
	// failed in Postgres when the run ends.
	Lost int
	// DuplicateRows counts transcript rows beyond the first for a job.
	DuplicateRows int
	// DuplicateConvertCalls counts accepted convert calls beyond the first
	// for a job, from the emulator's ledger: audio billed twice.
	DuplicateConvertCalls int
	Seconds               float64
}

// Header is the table's header line, printed once above the scenarios.
func Header() string {
	return fmt.Sprintf("%-18s %6s %9s %6s %4s %14s %23s %7s",
		"scenario", "jobs", "completed", "failed", "lost", "duplicate_rows", "duplicate_convert_calls", "seconds")
}

// Line is f under Header.
func (f Figures) Line() string {
	return fmt.Sprintf("%-18s %6d %9d %6d %4d %14d %23d %7.1f",
		f.Scenario, f.Jobs, f.Completed, f.Failed, f.Lost, f.DuplicateRows, f.DuplicateConvertCalls, f.Seconds)
}

// Report is what Check found: the figures and the detail behind them.
type Report struct {
	Figures
	// Mismatched are completed jobs whose transcript is not the one of
	// their own audio.
	Mismatched []string
	// NotTerminal maps each lost job to its state ("missing" when it has
	// no row).
	NotTerminal map[string]string
	// FailReasons counts failed jobs by error; FailedJobs are their ids.
	FailReasons map[string]int
	FailedJobs  []string
	// Duplicates are the jobs with more than one accepted convert call.
	Duplicates []DuplicateCall
	// ConvertCalls is the sum of jobs.convert_calls: the submitters' own
	// count of calls, to compare with the ledger.
	ConvertCalls int
	// LedgerAccepted and LedgerRefused count the emulator's answers.
	LedgerAccepted, LedgerRefused int
	// Undelivered counts accepted webhook calls whose webhook did not
	// reach a 2xx (the ingress was down, or refused it) or was dropped.
	Undelivered int
	// Stats are the emulator's counters at the end (RunScenario fills
	// them in): the faults it injected, webhooks sent and failed.
	Stats *emulator.Stats
}

// Injected is the number of faults the emulator injected.
func (r *Report) Injected() int {
	if r.Stats == nil {
		return 0
	}
	n := 0
	for _, v := range r.Stats.Injected {
		n += v
	}
	return n
}

// DuplicateCall is a job billed more than once.
type DuplicateCall struct {
	JobID string
	At    []time.Time // when each accepted call started
}

// DB is what the checks need of Postgres: a *pgxpool.Pool or a *pgx.Conn.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Terminal counts how many of ids are completed or failed.
func Terminal(ctx context.Context, conn DB, ids []string) (int, error) {
	var n int
	err := conn.QueryRow(ctx,
		`SELECT count(*) FROM jobs WHERE job_id = ANY($1) AND state IN ('completed', 'failed')`, ids).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("chaos: count terminal jobs: %w", err)
	}
	return n, nil
}

// Check computes the figures for jobs with SQL and the ledger.
func Check(ctx context.Context, conn DB, ledger []emulator.Call, jobs []Submitted, l *Load) (*Report, error) {
	r := &Report{NotTerminal: map[string]string{}, FailReasons: map[string]int{}}
	r.Jobs = len(jobs)
	ids := make([]string, len(jobs))
	want := make(map[string]string, len(jobs)) // job id -> expected text
	for i, j := range jobs {
		ids[i] = j.JobID
		want[j.JobID] = l.Text[j.Path]
	}
	seen := map[string]bool{}
	rows, err := conn.Query(ctx, `
		SELECT j.job_id, j.state, coalesce(j.error, ''), j.convert_calls,
		       (SELECT count(*) FROM transcripts t WHERE t.job_id = j.job_id),
		       (SELECT t.text FROM transcripts t WHERE t.request_id = j.request_id)
		FROM jobs j WHERE j.job_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("chaos: read jobs: %w", err)
	}
	for rows.Next() {
		var id, state, reason string
		var calls, transcripts int
		var text *string
		if err := rows.Scan(&id, &state, &reason, &calls, &transcripts, &text); err != nil {
			return nil, fmt.Errorf("chaos: read jobs: %w", err)
		}
		seen[id] = true
		r.ConvertCalls += calls
		if transcripts > 1 {
			r.DuplicateRows += transcripts - 1
		}
		switch state {
		case "completed":
			r.Completed++
			if text == nil || *text != want[id] {
				r.Mismatched = append(r.Mismatched, id)
			}
		case "failed":
			r.Failed++
			r.FailReasons[reason]++
			r.FailedJobs = append(r.FailedJobs, id)
		default:
			r.NotTerminal[id] = state
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chaos: read jobs: %w", err)
	}
	for _, id := range ids {
		if !seen[id] {
			r.NotTerminal[id] = "missing"
		}
	}
	r.Lost = len(r.NotTerminal)

	r.Duplicates, r.LedgerAccepted, r.LedgerRefused, r.Undelivered = ledgerFigures(ledger, want)
	for _, d := range r.Duplicates {
		r.DuplicateConvertCalls += len(d.At) - 1
	}
	return r, nil
}

// ledgerFigures counts the calls for the given jobs: duplicates among the
// accepted ones (only those are billed), and refusals.
func ledgerFigures(ledger []emulator.Call, jobs map[string]string) (dups []DuplicateCall, accepted, refused, undelivered int) {
	byJob := map[string][]time.Time{}
	for _, c := range ledger {
		if _, ours := jobs[c.JobID]; !ours {
			continue
		}
		if !c.Accepted {
			refused++
			continue
		}
		accepted++
		if c.Delivery != "" && c.Delivery != "delivered" {
			undelivered++
		}
		byJob[c.JobID] = append(byJob[c.JobID], c.At)
	}
	for id, at := range byJob {
		if len(at) > 1 {
			sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
			dups = append(dups, DuplicateCall{JobID: id, At: at})
		}
	}
	sort.Slice(dups, func(i, j int) bool { return dups[i].JobID < dups[j].JobID })
	return dups, accepted, refused, undelivered
}

// Summary describes the report's detail in a few lines for the test log.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledger: %d accepted, %d refused, %d webhooks not delivered; jobs.convert_calls sum %d",
		r.LedgerAccepted, r.LedgerRefused, r.Undelivered, r.ConvertCalls)
	if st := r.Stats; st != nil {
		fmt.Fprintf(&b, "\nemulator: injected %v; refused by status %v; %d answers lost; webhooks %d sent, %d delivered, %d failed, %d dropped; %d transcript GETs",
			st.Injected, st.Refused, st.AnswersLost, st.WebhooksSent, st.WebhooksDelivered, st.WebhooksFailed,
			st.WebhooksDropped, st.TranscriptGets)
	}
	if len(r.FailReasons) > 0 {
		fmt.Fprintf(&b, "\nfailed by reason: %v", r.FailReasons)
	}
	if len(r.NotTerminal) > 0 {
		byState := map[string]int{}
		var some []string
		for id, st := range r.NotTerminal {
			byState[st]++
			if len(some) < 5 {
				some = append(some, id+" ("+st+")")
			}
		}
		sort.Strings(some)
		fmt.Fprintf(&b, "\nlost by state: %v; e.g. %s", byState, strings.Join(some, ", "))
	}
	if len(r.Mismatched) > 0 {
		fmt.Fprintf(&b, "\n%d completed jobs carry another audio's transcript, e.g. %s", len(r.Mismatched), r.Mismatched[0])
	}
	for i, d := range r.Duplicates {
		if i == 5 {
			fmt.Fprintf(&b, "\n... %d more jobs billed twice", len(r.Duplicates)-5)
			break
		}
		fmt.Fprintf(&b, "\njob %s billed %d times, calls at %s", d.JobID, len(d.At), fmtTimes(d.At))
	}
	return b.String()
}

func fmtTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Format("15:04:05.000")
	}
	return strings.Join(s, ", ")
}
