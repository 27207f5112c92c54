-- scribeq's Postgres roles, least privilege (deploy/README.md, "Postgres roles").
--
--   scribeq_migrate  owns the schema and every object in it; runs `scribeq migrate up`.
--   scribeq_sink     reads and writes the rows of scribeq's tables; cannot
--                    create, alter, drop or truncate anything. `scribeq sink`.
--   scribeq_read     reads tables and views, nothing else. `scribeq reconciler`
--                    and the query commands (status, show, jobs, search,
--                    export, watch, batches) via SCRIBEQ_READ_DATABASE_URL.
--
-- Run it as a superuser, or as the database's owner with CREATEROLE (a
-- managed service's admin role), connected to scribeq's database, before
-- the first `scribeq migrate up` and once more after it:
--
--   psql -v ON_ERROR_STOP=1 -1 -d scribeq -f deploy/postgres/roles.sql
--
-- It is idempotent: running it again at any time is harmless. On an
-- existing database it hands every object in the schema to scribeq_migrate
-- and grants what exists. Tables that later migrations create (as
-- scribeq_migrate) get their grants from the default privileges below; the
-- run after the first migration narrows the two tables the migrations
-- create that the sink must only read (goose's version table, language_configs).
--
-- The roles are created without passwords; set them afterwards:
--
--   ALTER ROLE scribeq_migrate PASSWORD '...';   -- or psql's \password
--
-- It assumes scribeq's database is its own: it stops every role but the
-- database's owner from creating temporary tables in it.
-- deploy/postgres/roles_test.go runs it on a fresh database, on one a
-- superuser migrated before these roles existed, and as a non-superuser
-- admin.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['scribeq_migrate', 'scribeq_sink', 'scribeq_read'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END $$;

-- A managed service's admin role is no superuser: to hand scribeq_migrate
-- the schema and set its default privileges it must be a member of it.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'scribeq_migrate', 'MEMBER') THEN
        EXECUTE format('GRANT scribeq_migrate TO %I', current_user);
    END IF;
END $$;

-- Queries run read-only even if a command forgets to ask.
ALTER ROLE scribeq_read SET default_transaction_read_only = on;

-- The database: connect, but no temporary tables (TEMPORARY is granted to
-- PUBLIC by default, and a temporary table is a table the sink could create).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO scribeq_migrate, scribeq_sink, scribeq_read', current_database());
END $$;

-- The schema: scribeq_migrate owns it, nobody else creates in it.
ALTER SCHEMA public OWNER TO scribeq_migrate;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO scribeq_sink, scribeq_read;

-- Objects created before these roles existed (a database migrated by
-- another role) change hands, so that scribeq_migrate can alter and drop
-- them in later migrations. Indexes and the sequences of serial columns
-- follow their table. Objects of extensions are left alone.
DO $$
DECLARE
    o record;
BEGIN
    FOR o IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END AS kind
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
          AND c.relowner <> 'scribeq_migrate'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO scribeq_migrate', o.kind, o.name);
    END LOOP;
    -- Sequences not owned by a column.
    FOR o IN
        SELECT c.oid::regclass AS name
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind = 'S'
          AND c.relowner <> 'scribeq_migrate'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO scribeq_migrate', o.name);
    END LOOP;
    FOR o IN
        SELECT p.oid::regprocedure AS name
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.proowner <> 'scribeq_migrate'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO scribeq_migrate', o.name);
    END LOOP;
    FOR o IN
        SELECT t.oid::regtype AS name
        FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace
          AND t.typtype IN ('e', 'd', 'r', 'm')
          AND t.typowner <> 'scribeq_migrate'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO scribeq_migrate', o.name);
    END LOOP;
END $$;

-- What exists now.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO scribeq_sink;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO scribeq_sink;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO scribeq_read;
-- text_search_config() and any later function: the sink calls it while
-- storing a transcript, search while reading.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO scribeq_sink, scribeq_read;

-- What later migrations (run as scribeq_migrate) create.
ALTER DEFAULT PRIVILEGES FOR ROLE scribeq_migrate IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO scribeq_sink;
ALTER DEFAULT PRIVILEGES FOR ROLE scribeq_migrate IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO scribeq_sink;
ALTER DEFAULT PRIVILEGES FOR ROLE scribeq_migrate IN SCHEMA public
    GRANT SELECT ON TABLES TO scribeq_read;
ALTER DEFAULT PRIVILEGES FOR ROLE scribeq_migrate IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO scribeq_sink, scribeq_read;

-- Tables the sink only reads. goose's version table: the sink checks at
-- start that the schema is current, and must not be able to change what
-- was migrated. language_configs: reference data that migrations write.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['goose_db_version', 'language_configs'] LOOP
        IF to_regclass(format('public.%I', t)) IS NOT NULL THEN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON public.%I FROM scribeq_sink', t);
        END IF;
    END LOOP;
END $$;
