package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// Stats are the emulator's counters since it started (GET /emulator/stats).
type Stats struct {
	// Seed is the fault RNG's seed (Config.Seed, or the one drawn for it).
	Seed uint64 `json:"seed"`
	// Calls counts convert calls, whatever their answer; Accepted those
	// that started a job (billed), answered or not.
	Calls    int `json:"calls"`
	Accepted int `json:"accepted"`
	// Refused counts the calls answered with an error, by status, real
	// and injected alike.
	Refused map[int]int `json:"refused"`
	// Injected counts the faults drawn, by the names Call.Faults uses.
	Injected map[string]int `json:"injected"`
	// The two kinds of 429: TooManyConcurrent counts the real limit's and
	// injected ones, SystemBusy the injected system_busy answers.
	TooManyConcurrent int `json:"too_many_concurrent"`
	SystemBusy        int `json:"system_busy"`
	// AnswersLost counts accepted calls whose answer never reached the
	// client (reset, or the client gave up during a stall).
	AnswersLost int `json:"answers_lost"`
	// WebhooksSent counts webhook POSTs, duplicates included; they ended
	// as WebhooksDelivered (2xx) or WebhooksFailed. WebhooksDuplicated
	// counts the second POSTs, WebhooksDropped the webhooks never sent,
	// WebhooksPending the jobs whose first POST has not happened yet.
	WebhooksSent       int `json:"webhooks_sent"`
	WebhooksDelivered  int `json:"webhooks_delivered"`
	WebhooksFailed     int `json:"webhooks_failed"`
	WebhooksDropped    int `json:"webhooks_dropped"`
	WebhooksDuplicated int `json:"webhooks_duplicated"`
	WebhooksPending    int `json:"webhooks_pending"`
	// TranscriptGets counts GET transcript calls; TranscriptsLost the
	// 404s answered for lost transcripts, TranscriptErrors the injected 5xx.
	TranscriptGets   int `json:"transcript_gets"`
	TranscriptsLost  int `json:"transcripts_lost"`
	TranscriptErrors int `json:"transcript_errors"`
	// Slots are in use now, PeakSlots the most ever in use at once, out
	// of MaxConcurrent (0: no limit).
	Slots         int `json:"slots"`
	PeakSlots     int `json:"peak_slots"`
	MaxConcurrent int `json:"max_concurrent"`
}

// JobCounts sums up the convert calls made for one job_id.
type JobCounts struct {
	// Calls made; Accepted of them started a job (each one billed);
	// AnswerLost of those never answered the client; Refused were
	// answered with an error.
	Calls      int `json:"calls"`
	Accepted   int `json:"accepted"`
	AnswerLost int `json:"answer_lost"`
	Refused    int `json:"refused"`
	// Webhooks counts the webhook POSTs sent for the job, duplicates
	// included.
	Webhooks int `json:"webhooks"`
	// TranscriptionIDs of the accepted calls, oldest first.
	TranscriptionIDs []string `json:"transcription_ids,omitempty"`
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Refused = maps.Clone(s.stats.Refused)
	st.Injected = maps.Clone(s.stats.Injected)
	st.Slots = s.slots
	return st
}

// Faults returns the faults in force, defaults filled in.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.Status = cloneStatus(f.Status)
	return f
}

// SetFaults replaces the faults in force; zero durations take their
// defaults. Calls that arrive afterwards draw from the new faults.
func (s *Server) SetFaults(f Faults) error {
	f = f.withDefaults()
	if err := f.validate(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.log.Info("emulator: faults changed", "seed", s.cfg.Seed, "faults", f)
	return nil
}

// active reports whether f injects anything.
func (f Faults) active() bool {
	sum := f.TooManyConcurrent + f.SystemBusy + f.ResetAfterAccept + f.Stall + f.WebhookFirst +
		f.DropWebhooks + f.DuplicateWebhooks + f.LateWebhooks + f.ReorderWebhooks +
		f.MetadataAsString + f.LostTranscripts + f.TranscriptErrors
	for _, v := range f.Status {
		sum += v
	}
	return sum > 0
}

// Ledger returns every convert call so far, oldest first.
func (s *Server) Ledger() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneCalls(s.ledger)
}

// LedgerFor returns the convert calls made for jobID, oldest first.
func (s *Server) LedgerFor(jobID string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.ledger {
		if c.JobID == jobID {
			out = append(out, cloneCall(c))
		}
	}
	return out
}

// Jobs sums the ledger up per job_id. Calls without a job_id are left out.
func (s *Server) Jobs() map[string]JobCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]JobCounts{}
	for _, c := range s.ledger {
		if c.JobID == "" {
			continue
		}
		jc := out[c.JobID]
		jc.Calls++
		switch {
		case c.Accepted:
			jc.Accepted++
			jc.TranscriptionIDs = append(jc.TranscriptionIDs, c.TranscriptionID)
			if c.AnswerLost {
				jc.AnswerLost++
			}
		default:
			jc.Refused++
		}
		jc.Webhooks += c.Deliveries
		out[c.JobID] = jc
	}
	return out
}

func cloneCalls(calls []Call) []Call {
	out := make([]Call, len(calls))
	for i, c := range calls {
		out[i] = cloneCall(c)
	}
	return out
}

func cloneCall(c Call) Call {
	c.Faults = slices.Clone(c.Faults)
	return c
}

// handleLedger answers GET /emulator/ledger[?job_id=J]: the calls, oldest
// first.
func (s *Server) handleLedger(w http.ResponseWriter, r *http.Request) {
	var calls []Call
	if q := r.URL.Query(); q.Has("job_id") {
		calls = s.LedgerFor(q.Get("job_id"))
	} else {
		calls = s.Ledger()
	}
	if calls == nil {
		calls = []Call{}
	}
	writeJSON(w, http.StatusOK, calls)
}

// handleJobs answers GET /emulator/ledger/jobs[?job_id=J][&min_accepted=N]:
// JobCounts by job_id. min_accepted=2 lists the jobs billed more than once.
func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	minAccepted := 0
	if v := q.Get("min_accepted"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, newRequestID(), invalid("min_accepted", "min_accepted must be a non-negative integer."))
			return
		}
		minAccepted = n
	}
	jobs := s.Jobs()
	for id, jc := range jobs {
		if (q.Has("job_id") && id != q.Get("job_id")) || jc.Accepted < minAccepted {
			delete(jobs, id)
		}
	}
	writeJSON(w, http.StatusOK, jobs)
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// handlePutFaults replaces the faults with the JSON body (the Faults
// shape) and answers the faults now in force.
func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, newRequestID(), invalid("", "The body could not be read: "+err.Error()))
		return
	}
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		writeError(w, newRequestID(), invalid("", "The body is not a Faults object: "+err.Error()))
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeError(w, newRequestID(), invalid("", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}
