package intake

import (
	"crypto/rand"
	"encoding/hex"
)

// Status is what happened (or, in a Plan, will happen) to one item.
type Status string

const (
	// Ready: the scan found the item good to send; Plan.Queue will queue it.
	// Only in a Plan's results, never in Queue's.
	Ready Status = "ready"
	// Queued: the job is on JOBS with its queued event.
	Queued Status = "queued"
	// AlreadySubmitted: the same audio with the same options was queued by
	// an earlier submit (use Force to queue it again).
	AlreadySubmitted Status = "already-submitted"
	// Repeated: the same bytes and options as another item of this call,
	// which became the job (Result.DuplicateOf names it).
	Repeated Status = "duplicate"
	// Skipped: not sent, by design: not audio or video, empty, over a
	// limit. Never an error of ours or of the file system.
	Skipped Status = "skipped"
	// Failed: could not be read, a bad manifest row, a bad URL, or the
	// upload or publish failed. Running submit again retries it.
	Failed Status = "error"
)

// Result reports one item.
type Result struct {
	// Source is the item: a file path (as given or found), an archive
	// entry `calls.zip!2024/a.mp3`, or a URL. For a manifest row or stdin
	// line that names nothing usable it is the row itself (`list.csv:12`).
	Source string `json:"source"`
	// From is the manifest row or stdin line that named the item
	// (`list.csv:12`, `list.jsonl:3`, `stdin:7`); empty for sources named
	// directly.
	From   string `json:"from,omitempty"`
	Status Status `json:"status"`
	// Reason says why an item was skipped, failed, or is a duplicate.
	Reason string `json:"reason,omitempty"`
	JobID  string `json:"job_id,omitempty"`
	// DuplicateOf is the Source of the item this one repeats (Repeated).
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Bytes is the size of the item's content; 0 for URLs.
	Bytes int64 `json:"bytes,omitempty"`
	// DurationSecs is the audio duration; 0 when unknown.
	DurationSecs float64 `json:"duration_secs,omitempty"`
	// Format is what the content is (wav, mp3, …), from its bytes.
	Format string `json:"format,omitempty"`
	// Channels of the audio; 0 when unknown.
	Channels int `json:"channels,omitempty"`
	// Cost is the estimated price of the job in Pricing.Currency; 0 when
	// the duration is unknown, and for items that will not be sent.
	Cost float64 `json:"cost,omitempty"`
}

// Where is Source prefixed with From when there is one, for one-line
// reports: "list.csv:12 calls/a.mp3".
func (r Result) Where() string {
	if r.From == "" || r.From == r.Source {
		return r.Source
	}
	return r.From + " " + r.Source
}

// Progress is reported by Plan.Queue while it works.
type Progress struct {
	// Done items of Total (the plan's Ready items); Done counts every
	// settled item, queued or not.
	Done, Total int
	// Bytes of TotalBytes uploaded so far; it grows during an upload.
	// Items whose audio is already stored count as uploaded at once.
	Bytes, TotalBytes int64
	// Current is the Source of the item being worked on.
	Current string
	// Result is set, once per item, when the item is settled.
	Result *Result
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newBatchID returns a random (version 4) UUID.
func newBatchID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return uuidShape(b, 0x40)
}
