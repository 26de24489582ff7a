-- Change capture for the indexer, row versions, and the status history.
--
-- change_log is an outbox written by statement-level triggers in the writer's own
-- transaction. Each row carries the writer's transaction id (xid8). The indexer
-- reads it by *snapshot difference* (as PgQ does): the changes between two
-- snapshots S1 and S2 are the rows whose xid is visible in S2 and not in S1. This
-- never loses a row whose id was drawn before a later one committed (the
-- "where id > last_id" trap), and a long open transaction does not hold back
-- others: it stays in S1's in-progress list and is picked up when it commits.
-- See ARCHITECTURE.md, "Change capture".

CREATE TABLE change_log (
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    entity       text NOT NULL,
    row_id       bigint NOT NULL,
    op           "char" NOT NULL CHECK (op IN ('I', 'U', 'D')),
    old_status   text,
    new_status   text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (xid, seq)
);
CREATE INDEX change_log_recorded_at_idx ON change_log (recorded_at);

-- Everything below `pruned_below` has been deleted from change_log; an index whose
-- position is older than that cannot catch up and must be rebuilt.
CREATE TABLE change_log_horizon (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_below  xid8 NOT NULL DEFAULT '0',
    pruned_at     timestamptz
);
INSERT INTO change_log_horizon DEFAULT VALUES;

-- version and updated_at are maintained by the database, never by clients.
CREATE FUNCTION certscope_touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- TG_ARGV[0]: entity name written to change_log; TG_ARGV[1]: column holding the
-- document key; TG_ARGV[2] (optional): status column.
CREATE FUNCTION certscope_capture_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entity text := TG_ARGV[0];
    key_col text := TG_ARGV[1];
    status_col text := CASE WHEN TG_NARGS > 2 THEN TG_ARGV[2] END;
    status_new text := CASE WHEN status_col IS NULL THEN 'NULL::text' ELSE format('n.%I', status_col) END;
    status_old text := CASE WHEN status_col IS NULL THEN 'NULL::text' ELSE format('o.%I', status_col) END;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, new_status) SELECT %L, n.%I, ''I'', %s FROM new_rows n',
            entity, key_col, status_new);
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, old_status, new_status) '
            'SELECT %L, n.%I, ''U'', %s, %s FROM new_rows n LEFT JOIN old_rows o ON o.%I = n.%I',
            entity, key_col, status_old, status_new, key_col, key_col);
        -- a key that changed: the old document must go too
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op) SELECT DISTINCT %L, o.%I, ''D'' FROM old_rows o '
            'WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.%I = o.%I)',
            entity, key_col, key_col, key_col);
    ELSE
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, old_status) SELECT %L, o.%I, ''D'', %s FROM old_rows o',
            entity, key_col, status_old);
    END IF;
    PERFORM pg_notify('certscope_changes', '');
    RETURN NULL;
END
$$;

-- Bulk loaders (the seed generator) write their own back-dated history and set
-- certscope.bulk_load = 'on' in their session; change capture is never skipped.
CREATE FUNCTION certscope_record_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entity text := TG_ARGV[0];
BEGIN
    IF current_setting('certscope.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_history (organization_id, entity, entity_id, from_status, to_status, changed_by)
        SELECT n.organization_id, entity, n.id, NULL, n.status,
               nullif(current_setting('certscope.actor_id', true), '')::bigint
        FROM new_rows n;
    ELSE
        INSERT INTO status_history (organization_id, entity, entity_id, from_status, to_status, changed_by)
        SELECT n.organization_id, entity, n.id, o.status, n.status,
               nullif(current_setting('certscope.actor_id', true), '')::bigint
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.status IS DISTINCT FROM n.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION certscope_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'feature_not_supported';
END
$$;

CREATE TRIGGER status_history_append_only BEFORE UPDATE ON status_history
    FOR EACH ROW EXECUTE FUNCTION certscope_forbid('the status history is append-only');

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('organizations',     'organization',     'id',      NULL,     true),
        ('users',             'user',             'id',      NULL,     true),
        ('frameworks',        'framework',        'id',      NULL,     true),
        ('controls',          'control',          'id',      NULL,     true),
        ('certifications',    'certification',    'id',      'status', true),
        ('requirements',      'requirement',      'id',      'status', true),
        ('evidence',          'evidence',         'id',      'status', true),
        ('risks',             'risk',             'id',      'status', true),
        ('risk_requirements', 'risk_requirement', 'risk_id', NULL,     false),
        ('auditor_assignments', 'auditor_assignment', 'certification_id', NULL, false)
    ) AS v(tbl, entity, key_col, status_col, versioned)
    LOOP
        IF t.versioned THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION certscope_touch_row()',
                           t.tbl || '_touch', t.tbl);
        END IF;
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(%L, %L%s)',
                       t.tbl || '_capture_insert', t.tbl, t.entity, t.key_col,
                       CASE WHEN t.status_col IS NULL THEN '' ELSE format(', %L', t.status_col) END);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(%L, %L%s)',
                       t.tbl || '_capture_update', t.tbl, t.entity, t.key_col,
                       CASE WHEN t.status_col IS NULL THEN '' ELSE format(', %L', t.status_col) END);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(%L, %L%s)',
                       t.tbl || '_capture_delete', t.tbl, t.entity, t.key_col,
                       CASE WHEN t.status_col IS NULL THEN '' ELSE format(', %L', t.status_col) END);
        -- TRUNCATE fires no row triggers: it would bypass change capture
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION certscope_forbid(%L)',
                       t.tbl || '_no_truncate', t.tbl, 'use DELETE so that change capture sees the rows');
        IF t.status_col IS NOT NULL THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                           'FOR EACH STATEMENT EXECUTE FUNCTION certscope_record_status(%L)',
                           t.tbl || '_history_insert', t.tbl, t.entity);
            EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                           'FOR EACH STATEMENT EXECUTE FUNCTION certscope_record_status(%L)',
                           t.tbl || '_history_update', t.tbl, t.entity);
        END IF;
    END LOOP;
END
$$;
