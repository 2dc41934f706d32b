-- Sign-in sessions. The browser holds only the session id, in an HttpOnly
-- cookie; the row keeps who signed in and the bearer token the webshop
-- calls the services with, so tokens never reach the browser. Rows live in
-- PostgreSQL rather than in one process's memory, so a session survives a
-- restart and every replica of the webshop knows it.
CREATE TABLE sessions (
    -- SHA-256 of the id in the cookie: someone who reads this table cannot
    -- present a session as their own.
    id_hash             bytea       PRIMARY KEY,
    user_id             uuid        NOT NULL,
    role                text        NOT NULL,
    email               text,
    business_id         uuid,
    -- How the user signed in (`demo`; later an identity provider).
    sign_in_method      text        NOT NULL,
    access_token        text        NOT NULL,
    -- Every form the session posts carries this token (synchronizer token).
    csrf_token          text        NOT NULL,
    -- A checkout waiting for the customer at the payment provider's page;
    -- the return page confirms it.
    pending_checkout_id uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    CONSTRAINT sessions_id_hash_is_sha256 CHECK (octet_length(id_hash) = 32),
    CONSTRAINT sessions_expire_after_creation CHECK (expires_at > created_at),
    CONSTRAINT sessions_business_has_its_business
        CHECK (role <> 'business' OR business_id IS NOT NULL)
);

-- The periodic prune deletes by expiry.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
