-- A checkout: the quote the customer accepted, what it holds at its peers
-- (a points reservation, a payment authorization) and where it stands.
CREATE TABLE checkouts (
    id                UUID PRIMARY KEY,
    -- Minted before anything is reserved; peers key their holds by it.
    order_id          UUID NOT NULL CONSTRAINT checkouts_order_id_unique UNIQUE,
    customer_id       UUID NOT NULL,
    customer_email    TEXT,
    status            TEXT NOT NULL CONSTRAINT checkouts_status_known CHECK (
        status IN ('in_progress', 'requires_action', 'completed', 'failed', 'expired')
    ),
    currency          TEXT NOT NULL,
    -- The priced lines as quoted, in cart order.
    lines             JSONB NOT NULL,
    subtotal_minor    BIGINT NOT NULL,
    discount_minor    BIGINT NOT NULL,
    total_minor       BIGINT NOT NULL CONSTRAINT checkouts_total_not_negative CHECK (total_minor >= 0),
    points_applied    BIGINT NOT NULL CONSTRAINT checkouts_points_not_negative CHECK (points_applied >= 0),
    available_points  BIGINT NOT NULL,
    shipping_address  JSONB NOT NULL,
    provider          TEXT,
    payment_method    TEXT,
    return_url        TEXT,
    reservation_id    UUID,
    -- When the checkout can no longer be finished: the reservation's expiry,
    -- or the TTL when no points were reserved.
    expires_at        TIMESTAMPTZ NOT NULL,
    authorization_id  UUID,
    next_action_url   TEXT,
    -- Why a failed checkout failed (the code it answered with).
    failure_code      TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT checkouts_points_reserved CHECK (points_applied = 0 OR reservation_id IS NOT NULL OR status <> 'completed'),
    CONSTRAINT checkouts_paid CHECK (total_minor = 0 OR authorization_id IS NOT NULL OR status <> 'completed')
);

-- The expiry sweep reads only unfinished checkouts, by deadline.
CREATE INDEX checkouts_unfinished_expires_at ON checkouts (expires_at)
    WHERE status IN ('in_progress', 'requires_action');
