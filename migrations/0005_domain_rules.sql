-- Business rules that PostgreSQL must apply itself, each written once here and
-- once in Rust (crate certscope-domain). domain/tests/sql_rules.rs runs both on
-- generated cases and fails when they disagree.
--
-- The functions are plain SQL expressions, IMMUTABLE: the planner inlines them,
-- so predicates built from them still match indexes and partial-index
-- conditions.

-- domain::evidence::valid_on = counts_for_coverage(status) AND in_window(...):
-- accepted evidence collected on or before `day` that has not expired by it
-- (expires_on is the last valid day). The two halves are separate so that the
-- reports' aggregate can filter on the first (matching the partial index below)
-- and aggregate the second from index columns alone.
CREATE FUNCTION certscope_evidence_counts(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT status = 'accepted' $$;

CREATE FUNCTION certscope_evidence_in_window(collected_on date, expires_on date, day date)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT collected_on <= day AND (expires_on IS NULL OR expires_on >= day) $$;

CREATE FUNCTION certscope_evidence_valid_on(status text, collected_on date, expires_on date, day date)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT certscope_evidence_counts(status)
                 AND certscope_evidence_in_window(collected_on, expires_on, day) $$;

-- domain::evidence::expired_by: the last valid day is before `day`.
CREATE FUNCTION certscope_expired_by(expires_on date, day date) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT expires_on < day $$;

-- domain::RequirementStatus::{is_applicable, is_implemented}.
CREATE FUNCTION certscope_requirement_applicable(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT status <> 'not_applicable' $$;

CREATE FUNCTION certscope_requirement_implemented(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT status = 'implemented' $$;

-- domain::Completion::pct: implemented among applicable, percent with one
-- decimal (halves up), 0 when nothing is applicable.
CREATE FUNCTION certscope_completion_pct(implemented bigint, applicable bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(round(100.0 * implemented / nullif(applicable, 0), 1), 0)::float8 $$;

-- The aggregate over requirement statuses: `certscope_completion(status)`.
CREATE FUNCTION certscope_completion_step(state bigint[], status text) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY[
        state[1] + CASE WHEN certscope_requirement_implemented(status) THEN 1 ELSE 0 END,
        state[2] + CASE WHEN certscope_requirement_applicable(status) THEN 1 ELSE 0 END] $$;

CREATE FUNCTION certscope_completion_final(state bigint[]) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT certscope_completion_pct(state[1], state[2]) $$;

CREATE AGGREGATE certscope_completion(text) (
    SFUNC = certscope_completion_step,
    STYPE = bigint[],
    FINALFUNC = certscope_completion_final,
    INITCOND = '{0,0}'
);

-- The coverage index of 0003, with its condition taken from the rule.
DROP INDEX evidence_accepted_coverage_idx;
CREATE INDEX evidence_accepted_coverage_idx ON evidence (organization_id, requirement_id)
    INCLUDE (collected_on, expires_on) WHERE certscope_evidence_counts(status);
