-- Browser sign-in for the web interface.
--
-- A sign-in link (`certscope signin-link`) is a random token shown once; only
-- its SHA-256 is kept. It opens one session, within ten minutes, once: the
-- UPDATE that spends it is the single place that decides.
CREATE TABLE web_signin_links (
    token_hash       bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    organization_id  bigint NOT NULL,
    user_id          bigint NOT NULL,
    role             text NOT NULL CHECK (role IN ('officer', 'executive', 'auditor', 'admin')),
    -- an auditor's certifications (NULL for every other role)
    certifications   bigint[] CHECK ((role = 'auditor') = (certifications IS NOT NULL)),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX web_signin_links_expiry ON web_signin_links (expires_at);

-- A browser session: the cookie holds a random id, the table its SHA-256.
-- Ends at the first of: sign-out (`ended_at`), its absolute expiry, or
-- `idle` without a request (checked against `last_seen_at`).
CREATE TABLE web_sessions (
    id_hash          bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    organization_id  bigint NOT NULL,
    user_id          bigint NOT NULL,
    role             text NOT NULL CHECK (role IN ('officer', 'executive', 'auditor', 'admin')),
    certifications   bigint[] CHECK ((role = 'auditor') = (certifications IS NOT NULL)),
    -- how the session was opened: 'link' today, an identity provider's name next
    method           text NOT NULL,
    -- the token every state-changing request must carry (forms and scripts)
    csrf_token       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- A browser sign-in at an identity provider, between the redirect there and
-- the callback: what the callback must check (the `state` it carries, bound
-- to the browser by a cookie, and the ID token's `nonce`) and the PKCE
-- verifier it proves the code with. Spent once, within ten minutes.
CREATE TABLE web_oidc_logins (
    state_hash     bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    provider       text NOT NULL,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    -- the local page to land on afterwards
    return_to      text NOT NULL CHECK (return_to LIKE '/%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX web_oidc_logins_expiry ON web_oidc_logins (expires_at);
