package event_test

import (
	"encoding/json"
	"testing"

	"github.com/scribeq/scribeq/pkg/event"
)

// FuzzDecode: whatever arrives on EVENTS, Decode either refuses it or
// returns an event that validates and survives a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"queued","job_id":"j","job":{"v":1,"job_id":"j","source":{"object":"o"},"options":{"model":"scribe_v2"}}}`))
	f.Add([]byte(`{"v":1,"type":"completed","request_id":"r","transcription":{"text":"x"}}`))
	f.Add([]byte(`{"v":1,"type":"completed","request_id":"r","payload_ref":"event/r"}`))
	f.Add([]byte(`{"v":1,"type":"dead_letter","dead_letter":{"stream":"JOBS","subject":"stt.jobs","data":"AAE="}}`))
	f.Add([]byte(`{"v":99,"type":"retried","job_id":"j","attempt":2}`))
	f.Add([]byte(`{"type":"failed"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := event.Decode(data)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		_ = e.MsgID()
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := event.Decode(again); err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, again)
		}
	})
}
