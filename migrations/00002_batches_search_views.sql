-- +goose Up

-- One row per submit call. The store creates it from the first queued event
-- that names the batch; created_at is the earliest queued time seen, name
-- the first non-empty name.
CREATE TABLE batches (
    batch_id    text PRIMARY KEY,
    name        text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX batches_name_idx ON batches (name);
INSERT INTO batches (batch_id, created_at)
SELECT batch_id, min(coalesce(queued_at, created_at)) FROM jobs WHERE batch_id IS NOT NULL GROUP BY batch_id;

-- What intake assumed an audio hour of the job costs (event.Pricing), so
-- cost is plain SQL: hours × price_per_hour × price_multiplier.
ALTER TABLE jobs
    ADD COLUMN price_per_hour   numeric,
    ADD COLUMN price_multiplier numeric,
    ADD COLUMN currency         text;
-- `scribeq jobs` pages newest first; -infinity keeps rows without a queued
-- time (a job first seen through a later event) at the end.
CREATE INDEX jobs_queued_idx ON jobs ((coalesce(queued_at, '-infinity'::timestamptz)), job_id);
CREATE INDEX jobs_metadata_idx ON jobs USING gin (metadata jsonb_path_ops);
-- For the language filter, and for search to list the languages (hence
-- text-search configurations) in use with a skip scan.
CREATE INDEX transcripts_language_idx ON transcripts (language_code);

-- Which text-search configuration reads which language. code is what
-- ElevenLabs (or a user) writes: ISO-639-1, ISO-639-3 and the ISO-639-2/B
-- variants. A configuration this server lacks maps to simple.
CREATE TABLE language_configs (
    code       text PRIMARY KEY,
    language   text NOT NULL,
    ts_config  text NOT NULL
);
INSERT INTO language_configs (code, language, ts_config)
SELECT v.code, v.language,
       CASE WHEN EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = v.language) THEN v.language ELSE 'simple' END
FROM (VALUES
    ('en', 'english'), ('eng', 'english'),
    ('fr', 'french'), ('fra', 'french'), ('fre', 'french'),
    ('de', 'german'), ('deu', 'german'), ('ger', 'german'),
    ('es', 'spanish'), ('spa', 'spanish'),
    ('it', 'italian'), ('ita', 'italian'),
    ('pt', 'portuguese'), ('por', 'portuguese'),
    ('nl', 'dutch'), ('nld', 'dutch'), ('dut', 'dutch'),
    ('ru', 'russian'), ('rus', 'russian'),
    ('sv', 'swedish'), ('swe', 'swedish'),
    ('no', 'norwegian'), ('nor', 'norwegian'), ('nb', 'norwegian'), ('nob', 'norwegian'),
    ('nn', 'norwegian'), ('nno', 'norwegian'),
    ('da', 'danish'), ('dan', 'danish'),
    ('fi', 'finnish'), ('fin', 'finnish'),
    ('hu', 'hungarian'), ('hun', 'hungarian'),
    ('ro', 'romanian'), ('ron', 'romanian'), ('rum', 'romanian'),
    ('tr', 'turkish'), ('tur', 'turkish'),
    ('ar', 'arabic'), ('ara', 'arabic'), ('arb', 'arabic'),
    ('el', 'greek'), ('ell', 'greek'), ('gre', 'greek'),
    ('id', 'indonesian'), ('ind', 'indonesian'),
    ('ga', 'irish'), ('gle', 'irish'),
    ('lt', 'lithuanian'), ('lit', 'lithuanian'),
    ('ne', 'nepali'), ('nep', 'nepali'), ('npi', 'nepali'),
    ('ta', 'tamil'), ('tam', 'tamil'),
    ('yi', 'yiddish'), ('yid', 'yiddish'),
    ('ca', 'catalan'), ('cat', 'catalan'),
    ('eu', 'basque'), ('eus', 'basque'), ('baq', 'basque'),
    ('hy', 'armenian'), ('hye', 'armenian'), ('arm', 'armenian'),
    ('sr', 'serbian'), ('srp', 'serbian'),
    ('hi', 'hindi'), ('hin', 'hindi')
) AS v(code, language);

-- +goose StatementBegin
-- text_search_config names the configuration for a language code ("eng",
-- "en", "en-US", "pt_BR"): its language_configs entry, else simple.
CREATE FUNCTION text_search_config(language_code text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT ts_config FROM language_configs
         WHERE code = lower(split_part(replace(btrim(language_code), '_', '-'), '-', 1))),
        'simple')
$$;
-- +goose StatementEnd

-- Short passages of each transcript, the unit of full-text search: split at
-- speaker and channel changes, at pauses of a second or more and, on a
-- sentence end where possible, every 20 s or 60 words. The store writes
-- them in the transaction that stores the transcript; transcripts written
-- before this table existed (or by an older binary) have chunks_version
-- NULL and get theirs when migrations next run.
--
-- ts_config is text, not regconfig: pg_upgrade refuses tables holding
-- regconfig values.
CREATE TABLE transcript_chunks (
    request_id    text NOT NULL REFERENCES transcripts (request_id) ON DELETE CASCADE,
    seq           integer NOT NULL,
    job_id        text,
    speaker       text,
    channel       integer,
    start_s       double precision,
    end_s         double precision,
    text          text NOT NULL,
    word_offsets  integer[] NOT NULL,
    word_starts   real[] NOT NULL,
    ts_config     text NOT NULL,
    tsv           tsvector NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX transcript_chunks_tsv_idx ON transcript_chunks USING gin (tsv);
CREATE INDEX transcript_chunks_job_idx ON transcript_chunks (job_id);

COMMENT ON TABLE transcript_chunks IS
    'Short passages of each transcript (one speaker and channel, at most about 20 s or 60 words), indexed for full-text search.';
COMMENT ON COLUMN transcript_chunks.seq IS 'Position of the chunk in its transcript, from 0.';
COMMENT ON COLUMN transcript_chunks.job_id IS 'The transcript''s job (NULL while the transcript is not linked to one).';
COMMENT ON COLUMN transcript_chunks.text IS 'The chunk''s words with the spacing between them, as spoken.';
COMMENT ON COLUMN transcript_chunks.word_offsets IS 'UTF-8 byte offset in text where each word (or audio event) starts.';
COMMENT ON COLUMN transcript_chunks.word_starts IS 'Start time in seconds of each word, aligned with word_offsets.';
COMMENT ON COLUMN transcript_chunks.ts_config IS 'Text-search configuration of the transcript''s language (text_search_config(language_code)).';
COMMENT ON COLUMN transcript_chunks.tsv IS 'to_tsvector(ts_config, text).';

-- NULL: this transcript's chunks are still to be built (see above).
ALTER TABLE transcripts ADD COLUMN chunks_version smallint;
CREATE INDEX transcripts_unchunked_idx ON transcripts (request_id) WHERE chunks_version IS NULL;

CREATE VIEW transcript_words AS
SELECT t.request_id,
       t.job_id,
       (w.ord - 1)::integer                AS seq,
       w.e->>'type'                        AS type,
       w.e->>'text'                        AS word,
       (w.e->>'start')::double precision   AS start_s,
       (w.e->>'end')::double precision     AS end_s,
       w.e->>'speaker_id'                  AS speaker,
       (w.e->>'channel_index')::integer    AS channel,
       (w.e->>'logprob')::double precision AS logprob
FROM transcripts t
CROSS JOIN LATERAL jsonb_array_elements(t.words) WITH ORDINALITY AS w(e, ord)
WHERE w.e->>'type' IS DISTINCT FROM 'spacing';

COMMENT ON VIEW transcript_words IS
    'One row per word (and per audio event such as "(laughter)"; filter type = ''word'' for words only) of every transcript, from transcripts.words. Spacing is left out.';
COMMENT ON COLUMN transcript_words.request_id IS 'The ElevenLabs request the transcript came from (transcripts.request_id).';
COMMENT ON COLUMN transcript_words.job_id IS 'The scribeq job (NULL while the transcript is not linked to one).';
COMMENT ON COLUMN transcript_words.seq IS 'Index of the entry in transcripts.words, from 0 (words->seq is the raw entry).';
COMMENT ON COLUMN transcript_words.type IS '''word'' or ''audio_event''.';
COMMENT ON COLUMN transcript_words.word IS 'The word as transcribed, punctuation included.';
COMMENT ON COLUMN transcript_words.start_s IS 'Start time in seconds from the beginning of the audio.';
COMMENT ON COLUMN transcript_words.end_s IS 'End time in seconds from the beginning of the audio.';
COMMENT ON COLUMN transcript_words.speaker IS 'Diarization speaker id (speaker_0, …); NULL without diarization.';
COMMENT ON COLUMN transcript_words.channel IS 'Audio channel for multichannel transcripts; NULL otherwise.';
COMMENT ON COLUMN transcript_words.logprob IS 'Log probability of the word (confidence).';

-- Turns are runs of chunks with the same speaker and channel. Partitioning
-- by job_id as well as request_id (a transcript has one job) lets a filter
-- on either reach the chunks' indexes instead of numbering every turn.
CREATE VIEW transcript_segments AS
SELECT request_id, job_id, turn, speaker, channel,
       min(start_s)                             AS start_s,
       max(end_s)                               AS end_s,
       string_agg(text, ' ' ORDER BY seq)       AS text,
       sum(cardinality(word_starts))::integer   AS words
FROM (
    SELECT request_id, job_id, seq, speaker, channel, start_s, end_s, text, word_starts,
           sum(new_turn) OVER (PARTITION BY job_id, request_id ORDER BY seq) AS turn
    FROM (
        SELECT c.*,
               CASE WHEN lag(seq) OVER w IS NULL
                      OR (speaker, channel) IS DISTINCT FROM (lag(speaker) OVER w, lag(channel) OVER w)
                    THEN 1 ELSE 0 END AS new_turn
        FROM transcript_chunks c
        WINDOW w AS (PARTITION BY job_id, request_id ORDER BY seq)
    ) marked
) numbered
GROUP BY request_id, job_id, turn, speaker, channel;

COMMENT ON VIEW transcript_segments IS
    'One row per speaker turn: consecutive speech of one speaker on one channel, with its text and times. Built from transcript_chunks.';
COMMENT ON COLUMN transcript_segments.request_id IS 'The ElevenLabs request the transcript came from.';
COMMENT ON COLUMN transcript_segments.job_id IS 'The scribeq job (NULL while the transcript is not linked to one).';
COMMENT ON COLUMN transcript_segments.turn IS 'Position of the turn in its transcript, from 1 (channel by channel for multichannel audio).';
COMMENT ON COLUMN transcript_segments.speaker IS 'Diarization speaker id; NULL without diarization (then a turn is a whole channel).';
COMMENT ON COLUMN transcript_segments.channel IS 'Audio channel for multichannel transcripts; NULL otherwise.';
COMMENT ON COLUMN transcript_segments.start_s IS 'Start of the turn''s first word, in seconds.';
COMMENT ON COLUMN transcript_segments.end_s IS 'End of the turn''s last word, in seconds; end_s - start_s is the talk time.';
COMMENT ON COLUMN transcript_segments.text IS 'What was said in the turn.';
COMMENT ON COLUMN transcript_segments.words IS 'Number of words (and audio events) in the turn.';

CREATE VIEW job_summary AS
SELECT j.job_id,
       j.batch_id,
       b.name AS batch_name,
       j.state,
       coalesce(nullif(j.source->>'name', ''), nullif(j.source->>'path', ''), nullif(j.source->>'url', ''), j.job_id) AS name,
       j.source->>'path'    AS source_path,
       j.source->>'url'     AS source_url,
       j.source->>'archive' AS archive,
       j.source->>'entry'   AS entry,
       j.source->>'format'  AS format,
       CASE WHEN jsonb_typeof(j.source->'size') = 'number' THEN (j.source->>'size')::bigint END AS size_bytes,
       t.language_code,
       a.audio_secs,
       t.audio_duration_secs IS NULL AND a.audio_secs IS NOT NULL AS audio_secs_estimated,
       j.queued_at,
       j.submitted_at,
       j.completed_at,
       j.failed_at,
       extract(epoch FROM j.submitted_at - j.queued_at)::double precision    AS wait_secs,
       extract(epoch FROM j.completed_at - j.submitted_at)::double precision AS transcribe_secs,
       extract(epoch FROM j.completed_at - j.queued_at)::double precision    AS turnaround_secs,
       j.convert_calls,
       j.attempts,
       j.error,
       j.request_id,
       j.transcription_id,
       j.metadata,
       j.price_per_hour,
       coalesce(nullif(j.price_multiplier, 0), 1) AS price_multiplier,
       j.currency,
       round(a.audio_secs::numeric / 3600 * j.price_per_hour * coalesce(nullif(j.price_multiplier, 0), 1), 6) AS cost
FROM jobs j
LEFT JOIN batches b ON b.batch_id = j.batch_id
LEFT JOIN transcripts t ON t.request_id = j.request_id
CROSS JOIN LATERAL (
    SELECT coalesce(t.audio_duration_secs,
                    CASE WHEN jsonb_typeof(j.source->'duration_secs') = 'number'
                         THEN nullif((j.source->>'duration_secs')::double precision, 0) END) AS audio_secs
) a;

COMMENT ON VIEW job_summary IS
    'One row per job: batch, state, source, language, audio duration, timings, convert calls and cost.';
COMMENT ON COLUMN job_summary.job_id IS 'The job id (derived from the audio''s hash and the options).';
COMMENT ON COLUMN job_summary.queued_at IS 'When intake queued the job.';
COMMENT ON COLUMN job_summary.submitted_at IS 'When the convert call was accepted by ElevenLabs.';
COMMENT ON COLUMN job_summary.completed_at IS 'When the transcript arrived.';
COMMENT ON COLUMN job_summary.failed_at IS 'When the job failed (NULL unless it did).';
COMMENT ON COLUMN job_summary.request_id IS 'The ElevenLabs request id of the convert call (transcripts.request_id).';
COMMENT ON COLUMN job_summary.transcription_id IS 'ElevenLabs'' transcription id, for fetching the transcript again.';
COMMENT ON COLUMN job_summary.batch_id IS 'The submit call (batch) that queued the job.';
COMMENT ON COLUMN job_summary.batch_name IS 'The batch''s name (submit --batch), if any.';
COMMENT ON COLUMN job_summary.state IS 'queued, submitted, completed, failed or canceled.';
COMMENT ON COLUMN job_summary.name IS 'File name of the audio (else its path, URL or the job id).';
COMMENT ON COLUMN job_summary.source_path IS 'Path of the audio as given to submit (for archive entries, the archive''s path).';
COMMENT ON COLUMN job_summary.source_url IS 'URL sent to ElevenLabs instead of a file, if any.';
COMMENT ON COLUMN job_summary.archive IS 'The .zip or .tar(.gz) the audio came out of, if any.';
COMMENT ON COLUMN job_summary.entry IS 'The entry inside archive, if any.';
COMMENT ON COLUMN job_summary.format IS 'Content format found by intake (wav, mp3, …).';
COMMENT ON COLUMN job_summary.size_bytes IS 'Size of the audio in bytes.';
COMMENT ON COLUMN job_summary.language_code IS 'Language ElevenLabs detected (or was told), from the transcript.';
COMMENT ON COLUMN job_summary.audio_secs IS 'Audio duration in seconds: ElevenLabs'' figure once transcribed, else what intake read from the file; NULL when unknown.';
COMMENT ON COLUMN job_summary.audio_secs_estimated IS 'True when audio_secs is intake''s reading, not ElevenLabs'' figure.';
COMMENT ON COLUMN job_summary.wait_secs IS 'Seconds from queued to submitted to ElevenLabs.';
COMMENT ON COLUMN job_summary.transcribe_secs IS 'Seconds from submitted to the transcript''s arrival.';
COMMENT ON COLUMN job_summary.turnaround_secs IS 'Seconds from queued to completed.';
COMMENT ON COLUMN job_summary.convert_calls IS 'Convert calls made for the job (more than 1 after a repeated call).';
COMMENT ON COLUMN job_summary.attempts IS 'Retries an operator asked for.';
COMMENT ON COLUMN job_summary.error IS 'Why the job failed or was canceled.';
COMMENT ON COLUMN job_summary.metadata IS 'The job''s metadata (key/value pairs given at submit).';
COMMENT ON COLUMN job_summary.price_per_hour IS 'Price of one audio hour intake assumed, before surcharges.';
COMMENT ON COLUMN job_summary.price_multiplier IS '1 plus the surcharges of the job''s options.';
COMMENT ON COLUMN job_summary.currency IS 'Currency of price_per_hour and cost.';
COMMENT ON COLUMN job_summary.cost IS 'audio_secs / 3600 × price_per_hour × price_multiplier: actual once transcribed, estimated before; NULL without a price or a duration.';

-- +goose Down
DROP VIEW job_summary;
DROP VIEW transcript_segments;
DROP VIEW transcript_words;
DROP INDEX transcripts_unchunked_idx;
ALTER TABLE transcripts DROP COLUMN chunks_version;
DROP TABLE transcript_chunks;
DROP FUNCTION text_search_config(text);
DROP TABLE language_configs;
DROP INDEX transcripts_language_idx;
DROP INDEX jobs_metadata_idx;
DROP INDEX jobs_queued_idx;
ALTER TABLE jobs DROP COLUMN currency, DROP COLUMN price_multiplier, DROP COLUMN price_per_hour;
DROP TABLE batches;
