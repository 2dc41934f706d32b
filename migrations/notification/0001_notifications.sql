-- The inbox and what it takes to fill it. Payment and dispatch events name no
-- customer, so notification keeps, from the order's own events, whom each
-- order belongs to; a fact about an order not known yet waits in
-- `parked_notifications` until it is.

CREATE TABLE order_customers (
    order_id     UUID PRIMARY KEY,
    customer_id  UUID NOT NULL,
    -- The latest address any event gave; NULL while none has.
    email        TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    -- The inbox's order (newest first) and its cursor.
    seq         BIGSERIAL UNIQUE,
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    order_id    UUID NOT NULL,
    kind        TEXT NOT NULL,
    -- Which fact of that kind: '' for the order's own, the business for a
    -- part, the refund for a refund.
    fact_key    TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    -- The moment of the insert, not of its transaction's start, so that it
    -- follows `seq` as closely as concurrent consumers allow.
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    read_at     TIMESTAMPTZ,
    -- The address its email was queued for; NULL until an address is known.
    email_to    TEXT,
    emailed_at  TIMESTAMPTZ,
    -- A fact told once, however often and under whichever event id it comes.
    CONSTRAINT notifications_once_per_fact UNIQUE (order_id, kind, fact_key),
    CONSTRAINT notifications_kind_known CHECK (kind IN (
        'placed', 'paid', 'dispatched', 'confirmed', 'shipped', 'delivered',
        'declined', 'refunded', 'cancelled'))
);
CREATE INDEX notifications_inbox ON notifications (user_id, seq DESC);
-- What the email queue looks for when an order's address becomes known.
CREATE INDEX notifications_without_email ON notifications (order_id) WHERE email_to IS NULL;

-- Facts whose order's customer is not known yet, already worded; moved into
-- `notifications` (in the order they arrived) once it is.
CREATE TABLE parked_notifications (
    seq         BIGSERIAL PRIMARY KEY,
    order_id    UUID NOT NULL,
    kind        TEXT NOT NULL,
    fact_key    TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    parked_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT parked_notifications_once_per_fact UNIQUE (order_id, kind, fact_key)
);
