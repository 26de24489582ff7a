-- Reports aggregate the accepted evidence of an organization per requirement
-- (coverage, freshness, lapse dates). This covering partial index lets that be
-- an index-only scan instead of reading a million wide evidence rows.
CREATE INDEX evidence_accepted_coverage_idx ON evidence (organization_id, requirement_id)
    INCLUDE (collected_on, expires_on) WHERE status = 'accepted';
