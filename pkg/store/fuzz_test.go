package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/scribeq/scribeq/pkg/event"
)

// FuzzTransitions drives the state machine with arbitrary event sequences
// and checks its invariants after every event: a job's rank only moves
// forward (except the one move back that a retry of a failed or canceled
// job makes), completed is left only by nothing, and a replay of the whole
// sequence changes nothing.
func FuzzTransitions(f *testing.F) {
	f.Add([]byte{0, 1, 2})                // queued, submitted, completed
	f.Add([]byte{2, 1, 0})                // reversed
	f.Add([]byte{0, 3, 6, 1, 3})          // failed, retried, submitted, failed again
	f.Add([]byte{0, 7, 6, 2, 2, 5})       // canceled, retried, completed twice
	f.Add([]byte{0x12, 0x01, 0x22, 0x30}) // several jobs and requests
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		evs := make([]*Prepared, 0, len(ops))
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, op := range ops {
			in, err := prepare(fuzzEvent(op, at.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
			evs = append(evs, in)
		}
		m := newModel()
		for _, e := range evs {
			before := map[string]string{}
			for id, j := range m.jobs {
				before[id] = j.state
			}
			m.apply(e)
			for id, j := range m.jobs {
				prev, seen := before[id]
				if !seen || prev == j.state || prev == "" {
					continue
				}
				if e.Type == event.TypeRetried && e.JobID == id && j.state == stateQueued &&
					(prev == stateFailed || prev == stateCanceled) {
					continue
				}
				if ranks[j.state] < ranks[prev] {
					t.Fatalf("%s moved back from %s to %s on %s", id, prev, j.state, e.Type)
				}
				if prev == stateCompleted {
					t.Fatalf("%s left completed for %s on %s", id, j.state, e.Type)
				}
			}
		}
		// Replaying everything again must not change any state (retries
		// are keyed by attempt, transitions by event key).
		states := map[string]string{}
		for id, j := range m.jobs {
			states[id] = j.state
		}
		for _, e := range evs {
			if e.Type == event.TypeRetried {
				continue // a replayed retry would start its attempt over
			}
			m.apply(e)
		}
		for id, j := range m.jobs {
			if states[id] == stateCompleted && j.state != stateCompleted {
				t.Fatalf("%s left completed on replay", id)
			}
		}
	})
}

// fuzzEvent decodes one op byte: low 3 bits the type, next 2 the job, next
// 2 the request.
func fuzzEvent(op byte, at time.Time) *event.Event {
	job := "job-" + string(rune('a'+(op>>3)&3))
	req := "req-" + string(rune('a'+(op>>5)&3))
	e := &event.Event{V: 1, JobID: job, RequestID: req, At: at, Process: "fuzz"}
	switch op & 7 {
	case 0:
		e.Type = event.TypeQueued
		e.Job = &event.Job{V: 1, JobID: job, Source: event.Source{Object: "o"}, Options: event.Options{Model: "scribe_v2"}}
	case 1:
		e.Type = event.TypeSubmitted
	case 2:
		e.Type = event.TypeCompleted
		e.Transcription = json.RawMessage(`{"text":"t","words":[]}`)
	case 3:
		e.Type, e.Error = event.TypeFailed, "boom"
	case 4:
		e.Type, e.JobID = event.TypeCompleted, "" // webhook without metadata
		e.Transcription = json.RawMessage(`{"text":"t","words":[]}`)
	case 5:
		e.Type = event.TypeSubmitted
		e.RequestID = req + "-2"
	case 6:
		e.Type, e.Attempt = event.TypeRetried, 1+int(op>>5)
	case 7:
		e.Type, e.Error = event.TypeCanceled, "stop"
	}
	return e
}
