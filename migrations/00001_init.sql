-- +goose Up

-- One row per job, keyed by the job id that intake derives from the audio's
-- hash and the options. State only moves forward: state_rank orders the
-- states and every update is guarded by it.
CREATE TABLE jobs (
    job_id            text PRIMARY KEY,
    batch_id          text,
    request_id        text UNIQUE,
    transcription_id  text,
    source            jsonb NOT NULL DEFAULT '{}',
    options           jsonb NOT NULL DEFAULT '{}',
    metadata          jsonb NOT NULL DEFAULT '{}',
    state             text NOT NULL CHECK (state IN ('queued', 'submitted', 'failed', 'completed', 'canceled')),
    state_rank        smallint NOT NULL,
    error             text,
    attempts          integer NOT NULL DEFAULT 0,
    convert_calls     integer NOT NULL DEFAULT 0,
    queued_at         timestamptz,
    submitted_at      timestamptz,
    completed_at      timestamptz,
    failed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- The store guards every transition by rank; a row whose rank disagrees
    -- with its state would defeat that guard.
    CONSTRAINT jobs_state_rank_check CHECK (state_rank = CASE state
        WHEN 'queued' THEN 0 WHEN 'submitted' THEN 2 WHEN 'failed' THEN 3
        WHEN 'completed' THEN 4 WHEN 'canceled' THEN 5 END)
);
CREATE INDEX jobs_state_idx ON jobs (state);
CREATE INDEX jobs_batch_idx ON jobs (batch_id);
CREATE INDEX jobs_source_path_idx ON jobs ((source->>'path'));

-- One row per ElevenLabs request. A transcript whose job is not known (yet)
-- is still stored; job_id is filled in when the job is linked.
CREATE TABLE transcripts (
    request_id            text PRIMARY KEY,
    job_id                text,
    transcription_id      text,
    language_code         text,
    language_probability  double precision,
    text                  text NOT NULL DEFAULT '',
    words                 jsonb NOT NULL DEFAULT '[]',
    audio_duration_secs   double precision,
    payload               jsonb NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transcripts_job_idx ON transcripts (job_id);

-- Every state change, so `scribeq show` can tell a job's story. A replayed
-- event adds nothing: (job_id, event_key) is unique. event_key is the
-- Nats-Msg-Id of the event that caused the change; a job completed when its
-- submitted event finds the transcript waiting uses the completed event's
-- key (<request_id>:completed), as if that event had completed it.
CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    reason      text,
    process     text,
    event_key   text NOT NULL,
    at          timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, event_key)
);

-- Messages that can never be processed: kept with their raw bytes and the
-- error instead of being retried forever or dropped.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    stream      text NOT NULL,
    subject     text NOT NULL,
    msg_id      text,
    headers     jsonb NOT NULL DEFAULT '{}',
    data        bytea NOT NULL,
    error       text NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);
CREATE UNIQUE INDEX dead_letters_msg_idx ON dead_letters (stream, msg_id) WHERE msg_id IS NOT NULL;

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE job_events;
DROP TABLE transcripts;
DROP TABLE jobs;
