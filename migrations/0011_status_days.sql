-- Where each certification, requirement and risk stood at the end of every day
-- it changed: the last status_history row of that (entity, day). All a report
-- asks of history is an entity's status at the end of a day, so reports read
-- this instead of status_history, and their cost follows entities and days,
-- not changes: a requirement switched 67 times in half an hour (the soak,
-- RELIABILITY.md) is one row here, where status_history made the posture
-- report read 368,708 rows (a second of PostgreSQL) for 2,832 requirements.
-- Kept by a trigger on status_history itself, so every writer of history (the
-- change triggers, the seed's bulk copy, a back-dated insert) keeps it in step.
-- Evidence history is not reported by day and is left out.
CREATE TABLE status_days (
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    entity           text NOT NULL,
    entity_id        bigint NOT NULL,
    day              date NOT NULL,
    status           text NOT NULL,
    -- the status_history row that set it: a later one replaces it
    changed_at       timestamptz NOT NULL,
    history_id       bigint NOT NULL,
    PRIMARY KEY (entity, entity_id, day)
);

CREATE FUNCTION certscope_status_day() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_days AS d
           (organization_id, entity, entity_id, day, status, changed_at, history_id)
    VALUES (NEW.organization_id, NEW.entity, NEW.entity_id,
            (NEW.changed_at AT TIME ZONE 'UTC')::date, NEW.to_status, NEW.changed_at, NEW.id)
    ON CONFLICT (entity, entity_id, day) DO UPDATE
       SET organization_id = EXCLUDED.organization_id,
           status = EXCLUDED.status,
           changed_at = EXCLUDED.changed_at,
           history_id = EXCLUDED.history_id
     WHERE (d.changed_at, d.history_id) < (EXCLUDED.changed_at, EXCLUDED.history_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER status_history_days AFTER INSERT ON status_history
    FOR EACH ROW WHEN (NEW.entity <> 'evidence')
    EXECUTE FUNCTION certscope_status_day();

INSERT INTO status_days (organization_id, entity, entity_id, day, status, changed_at, history_id)
SELECT DISTINCT ON (entity, entity_id, (changed_at AT TIME ZONE 'UTC')::date)
       organization_id, entity, entity_id, (changed_at AT TIME ZONE 'UTC')::date,
       to_status, changed_at, id
  FROM status_history
 WHERE entity <> 'evidence'
 ORDER BY entity, entity_id, (changed_at AT TIME ZONE 'UTC')::date, changed_at DESC, id DESC;
