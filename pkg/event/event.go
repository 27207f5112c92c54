// Package event is scribeq's wire contract: the job message on JOBS and the
// events on EVENTS, their subjects, stream names and message ids. It imports
// only the standard library so that every other package can share it.
//
// Every message carries a version field (V). Readers accept any version up to
// the one they know and ignore fields they do not know, so old and new
// workers can coexist during a rolling upgrade.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sjson "github.com/segmentio/encoding/json"
)

// Version is the schema version this build writes.
const Version = 1

// Stream, bucket and subject names. Subjects under stt.events.> carry one
// event type each, so consumers can filter without decoding.
const (
	StreamJobs   = "JOBS"
	StreamEvents = "EVENTS"

	SubjectJobs   = "stt.jobs"
	SubjectEvents = "stt.events.>"

	// BucketAudio is the object store that holds uploaded audio under its
	// sha256 (content addressed, so the same bytes are stored once).
	BucketAudio = "AUDIO"
	// BucketPayloads is the object store for claim checks: event payloads too
	// large for one NATS message.
	BucketPayloads = "PAYLOADS"
	// BucketIntake remembers which job ids were submitted (KV create makes
	// the claim atomic across machines).
	BucketIntake = "INTAKE"
	// BucketSubmissions remembers, per job id, the convert call's claim and
	// the request_id it produced, before the job message is acknowledged.
	BucketSubmissions = "SUBMISSIONS"
	// BucketWebhooks remembers, per job id, the request_id of a webhook the
	// ingress stored: the evidence that an in-doubt convert call was
	// accepted after all.
	BucketWebhooks = "WEBHOOKS"
	// BucketSlots holds the concurrency slots shared by all submitters.
	BucketSlots = "SLOTS"
)

// Type names an event.
type Type string

const (
	TypeQueued    Type = "queued"
	TypeSubmitted Type = "submitted"
	TypeCompleted Type = "completed"
	TypeFailed    Type = "failed"
	// TypeDeadLetter carries a message a worker could never process, for the
	// sink to keep in dead_letters.
	TypeDeadLetter Type = "dead_letter"
	// TypeReplayed records that an operator sent a dead letter back.
	TypeReplayed Type = "dead_letter_replayed"
	// TypeRetried starts a new attempt of a failed or canceled job.
	TypeRetried Type = "retried"
	// TypeCanceled stops waiting for a job.
	TypeCanceled Type = "canceled"
)

// Subject is where events of this type are published.
func (t Type) Subject() string { return "stt.events." + string(t) }

// Valid reports whether t is a type this build knows.
func (t Type) Valid() bool {
	switch t {
	case TypeQueued, TypeSubmitted, TypeCompleted, TypeFailed, TypeDeadLetter, TypeReplayed, TypeRetried, TypeCanceled:
		return true
	}
	return false
}

// Source says where a job's audio comes from: exactly one of Object (a local
// file stored in the AUDIO bucket) or URL (sent to ElevenLabs as source_url).
type Source struct {
	// Object is the AUDIO object name: the lowercase hex sha256 of the bytes.
	Object string `json:"object,omitempty"`
	// Path is the file's path as the user gave it, for humans and `show`.
	Path string `json:"path,omitempty"`
	// Name is the base name sent as the multipart file name.
	Name string `json:"name,omitempty"`
	// Size in bytes of the object.
	Size int64 `json:"size,omitempty"`
	// URL is an https URL, sent as source_url (nothing is downloaded).
	URL string `json:"url,omitempty"`
	// DurationSecs is the audio duration when intake could read it; 0 means unknown.
	DurationSecs float64 `json:"duration_secs,omitempty"`
	// Format is what intake found the content to be (wav, mp3, flac, ogg,
	// m4a, mp4, webm, …), from its magic bytes; empty when unknown.
	Format string `json:"format,omitempty"`
	// Archive and Entry name the archive file and the entry inside it when
	// the audio came out of a .zip or .tar(.gz).
	Archive string `json:"archive,omitempty"`
	Entry   string `json:"entry,omitempty"`
}

// Pricing is what intake assumed one audio hour of this job costs, so the
// database can state cost without knowing the configuration.
type Pricing struct {
	// PerHour is the plan's price of one audio hour, before surcharges.
	PerHour float64 `json:"per_hour"`
	// Multiplier is 1 plus every surcharge the job's options incur
	// (keyterms +0.2, entity detection +0.3, …).
	Multiplier float64 `json:"multiplier"`
	// Currency of PerHour, e.g. USD.
	Currency string `json:"currency,omitempty"`
}

// Options are the transcription options of a job. The zero value of each
// field means "the API's default"; pointers distinguish unset from false/0.
type Options struct {
	Model          string   `json:"model"`
	Language       string   `json:"language,omitempty"`
	Diarize        bool     `json:"diarize,omitempty"`
	NumSpeakers    int      `json:"num_speakers,omitempty"`
	Timestamps     string   `json:"timestamps,omitempty"`
	TagAudioEvents *bool    `json:"tag_audio_events,omitempty"`
	Keyterms       []string `json:"keyterms,omitempty"`
	// MultiChannel transcribes each channel on its own (use_multi_channel);
	// every channel is billed.
	MultiChannel bool `json:"multi_channel,omitempty"`
	// EntityDetection asks for entities: all, pii, phi, pci, other,
	// offensive_language, or one entity type (+30% cost).
	EntityDetection string `json:"entity_detection,omitempty"`
}

// Job is the message on JOBS: one recording to transcribe.
type Job struct {
	V       int    `json:"v"`
	JobID   string `json:"job_id"`
	BatchID string `json:"batch_id,omitempty"`
	// BatchName is the user's name for the batch (submit --batch).
	BatchName string            `json:"batch_name,omitempty"`
	Source    Source            `json:"source"`
	Pricing   *Pricing          `json:"pricing,omitempty"`
	Options   Options           `json:"options"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	At        time.Time         `json:"at"`
}

// Validate checks the fields every worker relies on.
func (j *Job) Validate() error {
	if j.JobID == "" {
		return errors.New("job: missing job_id")
	}
	if (j.Source.Object == "") == (j.Source.URL == "") {
		return fmt.Errorf("job %s: exactly one of source.object and source.url must be set", j.JobID)
	}
	if j.Options.Model == "" {
		return fmt.Errorf("job %s: missing options.model", j.JobID)
	}
	return nil
}

// Event is every message on EVENTS. Which fields are set depends on Type.
type Event struct {
	V               int       `json:"v"`
	Type            Type      `json:"type"`
	JobID           string    `json:"job_id,omitempty"`
	RequestID       string    `json:"request_id,omitempty"`
	TranscriptionID string    `json:"transcription_id,omitempty"`
	At              time.Time `json:"at"`
	// Process names the worker that published the event (for job history).
	Process string `json:"process,omitempty"`

	// queued: the whole job, so the sink can record source, options and metadata.
	Job *Job `json:"job,omitempty"`

	// failed: why.
	Error string `json:"error,omitempty"`

	// retried: the attempt number it starts (1 for the first retry);
	// submitted, failed: the attempt they belong to (0 for the first).
	Attempt int `json:"attempt,omitempty"`

	// dead_letter: the message; dead_letter_replayed: its ID.
	DeadLetter *DeadLetter `json:"dead_letter,omitempty"`

	// submitted, failed: how many convert calls the job has cost so far, so
	// a call repeated after a crash is visible in Postgres.
	ConvertCalls int `json:"convert_calls,omitempty"`

	// completed: the webhook's data.transcription object exactly as received
	// (single- or multichannel) and its webhook_metadata, or, when that is too
	// large for one NATS message, PayloadRef naming the object in the
	// PAYLOADS bucket that holds the whole event (claim check).
	Transcription   json.RawMessage `json:"transcription,omitempty"`
	WebhookMetadata json.RawMessage `json:"webhook_metadata,omitempty"`
	PayloadRef      string          `json:"payload_ref,omitempty"`
}

// DeadLetter is a message that can never be processed.
type DeadLetter struct {
	// ID of the dead_letters row (dead_letter_replayed only).
	ID       int64               `json:"id,omitempty"`
	Stream   string              `json:"stream,omitempty"`
	Subject  string              `json:"subject,omitempty"`
	MsgID    string              `json:"msg_id,omitempty"`
	Seq      uint64              `json:"seq,omitempty"`
	Headers  map[string][]string `json:"headers,omitempty"`
	Data     []byte              `json:"data,omitempty"`
	Error    string              `json:"error,omitempty"`
	Attempts int                 `json:"attempts,omitempty"`
}

// MsgID is the Nats-Msg-Id that makes publishing this event idempotent.
func (e *Event) MsgID() string {
	switch e.Type {
	case TypeCompleted:
		return e.RequestID + ":completed"
	case TypeDeadLetter:
		return fmt.Sprintf("dead:%s:%d", e.DeadLetter.Stream, e.DeadLetter.Seq)
	case TypeReplayed:
		return fmt.Sprintf("replayed:%d:%d", e.DeadLetter.ID, e.At.UnixNano())
	case TypeRetried:
		return fmt.Sprintf("%s:retried:%d", e.JobID, e.Attempt)
	default:
		// A retried job's events must not be mistaken for the first
		// attempt's (the stream remembers ids for its duplicate window).
		if e.Attempt > 0 {
			return fmt.Sprintf("%s:%s:%d", e.JobID, e.Type, e.Attempt)
		}
		return e.JobID + ":" + string(e.Type)
	}
}

// Validate checks the fields that the event's type requires.
func (e *Event) Validate() error {
	if !e.Type.Valid() {
		return fmt.Errorf("event: unknown type %q", e.Type)
	}
	if e.V < 1 {
		return fmt.Errorf("event %s: missing version", e.Type)
	}
	switch e.Type {
	case TypeQueued:
		if e.Job == nil {
			return errors.New("event queued: missing job")
		}
		if err := e.Job.Validate(); err != nil {
			return fmt.Errorf("event queued: %w", err)
		}
		if e.JobID != e.Job.JobID {
			return fmt.Errorf("event queued: job_id %q does not match job %q", e.JobID, e.Job.JobID)
		}
	case TypeSubmitted:
		if e.JobID == "" || e.RequestID == "" {
			return errors.New("event submitted: needs job_id and request_id")
		}
	case TypeFailed, TypeCanceled:
		if e.JobID == "" {
			return fmt.Errorf("event %s: missing job_id", e.Type)
		}
	case TypeRetried:
		if e.JobID == "" || e.Attempt < 1 {
			return errors.New("event retried: needs job_id and attempt ≥ 1")
		}
	case TypeCompleted:
		if e.RequestID == "" {
			return errors.New("event completed: missing request_id")
		}
		if len(e.Transcription) == 0 && e.PayloadRef == "" {
			return errors.New("event completed: needs transcription or payload_ref")
		}
	case TypeDeadLetter:
		if e.DeadLetter == nil || e.DeadLetter.Stream == "" || e.DeadLetter.Subject == "" {
			return errors.New("event dead_letter: needs dead_letter with stream and subject")
		}
	case TypeReplayed:
		if e.DeadLetter == nil || e.DeadLetter.ID <= 0 {
			return errors.New("event dead_letter_replayed: needs dead_letter.id")
		}
	}
	return nil
}

// Decode parses and validates an event.
func Decode(data []byte) (*Event, error) {
	var e Event
	// segmentio's decoder: the sink decodes every event, transcript
	// included, and encoding/json took twice as long (docs/performance.md).
	if err := sjson.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if e.V > Version {
		// Newer writers only add fields; still refuse what we cannot validate.
		e.V = Version
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// DecodeJob parses and validates a job message.
func DecodeJob(data []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &j, nil
}
