-- Reports ask, per requirement, for its newest accepted evidence valid on a day
-- (coverage now and at the previous pack, freshness) and whether any of it
-- stays valid past the horizon. Ordered by collection day, each answer is the
-- first entry of a short backward index-only scan instead of an aggregate over
-- all of the organization's accepted evidence (a million rows in the benchmark
-- organization: 170 ms of the cold report, now about 60; issue 20).
-- Replaces the covering index of 0003/0005, which served only that aggregate.
DROP INDEX evidence_accepted_coverage_idx;
CREATE INDEX evidence_coverage_idx ON evidence (organization_id, requirement_id, collected_on)
    INCLUDE (expires_on) WHERE certscope_evidence_counts(status);
