-- Live events, derived from change_log (the stream that feeds the index).
--
-- The event deriver reads change_log by snapshot difference from its own cursor
-- and appends events in the same transaction that moves the cursor, so a crash
-- can neither lose nor duplicate one. Every writer of `events` first locks the
-- cursor row: appends are serialized, so ids are assigned in commit order and a
-- reader following `id > last` never skips one. See ARCHITECTURE.md, "Events".

-- Risk levels before and after a change: change capture keeps the columns named
-- in the trigger's fourth argument as JSON. Changes written by bulk loaders
-- (certscope.bulk_load = 'on': the seed generator's back-dated history) are
-- indexed like any other but announce nothing.
ALTER TABLE change_log
    ADD COLUMN old_detail jsonb,
    ADD COLUMN new_detail jsonb,
    ADD COLUMN quiet boolean NOT NULL
        DEFAULT coalesce(current_setting('certscope.bulk_load', true) = 'on', false);

CREATE OR REPLACE FUNCTION certscope_capture_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entity text := TG_ARGV[0];
    key_col text := TG_ARGV[1];
    status_col text := CASE WHEN TG_NARGS > 2 THEN TG_ARGV[2] END;
    status_new text := CASE WHEN status_col IS NULL THEN 'NULL::text' ELSE format('n.%I', status_col) END;
    status_old text := CASE WHEN status_col IS NULL THEN 'NULL::text' ELSE format('o.%I', status_col) END;
    detail_new text := 'NULL::jsonb';
    detail_old text := 'NULL::jsonb';
BEGIN
    IF TG_NARGS > 3 THEN
        SELECT 'jsonb_build_object(' || string_agg(format('%L, n.%I', c, c), ', ') || ')',
               'jsonb_build_object(' || string_agg(format('%L, o.%I', c, c), ', ') || ')'
          INTO detail_new, detail_old
          FROM unnest(string_to_array(TG_ARGV[3], ',')) AS c;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, new_status, new_detail) '
            'SELECT %L, n.%I, ''I'', %s, %s FROM new_rows n',
            entity, key_col, status_new, detail_new);
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, old_status, new_status, old_detail, new_detail) '
            'SELECT %L, n.%I, ''U'', %s, %s, %s, %s FROM new_rows n LEFT JOIN old_rows o ON o.%I = n.%I',
            entity, key_col, status_old, status_new, detail_old, detail_new, key_col, key_col);
        -- a key that changed: the old document must go too
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op) SELECT DISTINCT %L, o.%I, ''D'' FROM old_rows o '
            'WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.%I = o.%I)',
            entity, key_col, key_col, key_col);
    ELSE
        EXECUTE format(
            'INSERT INTO change_log (entity, row_id, op, old_status, old_detail) '
            'SELECT %L, o.%I, ''D'', %s, %s FROM old_rows o',
            entity, key_col, status_old, detail_old);
    END IF;
    PERFORM pg_notify('certscope_changes', '');
    RETURN NULL;
END
$$;

DROP TRIGGER risks_capture_insert ON risks;
DROP TRIGGER risks_capture_update ON risks;
DROP TRIGGER risks_capture_delete ON risks;
CREATE TRIGGER risks_capture_insert AFTER INSERT ON risks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(
        'risk', 'id', 'status', 'inherent_likelihood,inherent_impact,residual_likelihood,residual_impact');
CREATE TRIGGER risks_capture_update AFTER UPDATE ON risks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(
        'risk', 'id', 'status', 'inherent_likelihood,inherent_impact,residual_likelihood,residual_impact');
CREATE TRIGGER risks_capture_delete AFTER DELETE ON risks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION certscope_capture_changes(
        'risk', 'id', 'status', 'inherent_likelihood,inherent_impact,residual_likelihood,residual_impact');

CREATE TABLE events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text NOT NULL,
    -- NULL for global events (operator notices to everyone, index rebuilds)
    organization_id   bigint REFERENCES organizations (id) ON DELETE CASCADE,
    certification_id  bigint,
    -- every certification the event concerns (certification_id first, then
    -- e.g. a risk's linked ones): the certification rooms that carry it
    certification_ids bigint[] NOT NULL DEFAULT '{}',
    -- the users an event concerns (owners, submitters): the `user` room
    user_ids          bigint[] NOT NULL DEFAULT '{}',
    -- the data position: a search with min_position = this reflects the change
    position          text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    data              jsonb NOT NULL,
    -- one event per fact where a fact could be seen twice (evidence expiry)
    dedupe_key        text UNIQUE
);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- The deriver's position in change_log, the retention horizon of `events` (ids
-- at or below `pruned_through` are gone: a client resuming from one must resync)
-- and the day evidence expiry has been announced up to.
CREATE TABLE event_cursor (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    snapshot            text NOT NULL,
    pruned_through      bigint NOT NULL DEFAULT 0,
    expiry_swept_until  date NOT NULL DEFAULT current_date
);
INSERT INTO event_cursor (snapshot) VALUES (pg_current_snapshot()::text);
