-- Authorizations whose provider's answer was lost on the way (a timeout after
-- the request was sent): the provider may hold the amount, so the row stays
-- `pending` and a job asks again with the same idempotency key until it has
-- the answer. A pending authorization listed here is never taken for one
-- abandoned by a crashed request.
CREATE TABLE unanswered_authorizations (
    authorization_id  UUID PRIMARY KEY REFERENCES authorizations ON DELETE CASCADE,
    -- How the first answer was lost, for an operator.
    detail            TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
