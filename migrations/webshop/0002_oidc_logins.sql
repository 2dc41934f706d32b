-- OpenID Connect sign-ins on their way through the identity provider:
-- what the callback needs to finish one (the nonce the ID token must
-- carry, the PKCE verifier, where to go afterwards). Kept here rather than
-- in one process's memory so that the callback may reach any replica.
-- The callback deletes its row as it reads it: a `state` is good once.
CREATE TABLE oidc_logins (
    -- SHA-256 of the `state` sent to the provider, which the browser also
    -- holds in an HttpOnly cookie.
    state_hash    bytea       PRIMARY KEY,
    nonce         text        NOT NULL,
    pkce_verifier text        NOT NULL,
    next_path     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CONSTRAINT oidc_logins_state_hash_is_sha256 CHECK (octet_length(state_hash) = 32),
    CONSTRAINT oidc_logins_expire_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX oidc_logins_expires_at ON oidc_logins (expires_at);
