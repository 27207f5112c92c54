-- +goose Up

-- Transcripts are stored as jsonb twice (words, and the payload as
-- received) and TOAST compresses both. pglz took a fifth of Postgres's CPU
-- in a burst of completed jobs (docs/performance.md); lz4 compresses several
-- times faster at a similar ratio. It applies to values written from now
-- on. A server built without lz4 keeps pglz.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE transcripts ALTER COLUMN words SET COMPRESSION lz4,
        ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; transcripts stay compressed with pglz';
END $$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE transcripts ALTER COLUMN words SET COMPRESSION default,
    ALTER COLUMN payload SET COMPRESSION default;
