-- Each business's part of an order (a dispatch), how each business wants its
-- parts placed (an integration), and what is known per order before or after
-- its parts arrive (a withdraw may come first).

-- One row per business that chose a plugin; a business without one uses
-- `portal`. `config` is the plugin's own, checked by the plugin on PUT.
CREATE TABLE integrations (
    business_id  UUID PRIMARY KEY,
    plugin       TEXT NOT NULL,
    config       JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- One row per order the dispatcher heard of, by its parts or by a withdraw.
-- Both write this row first, so its row lock orders a withdraw against the
-- arrival of the parts: whichever commits second sees the other.
CREATE TABLE orders (
    order_id      UUID PRIMARY KEY,
    arrived_at    TIMESTAMPTZ,
    withdrawn_at  TIMESTAMPTZ
);

CREATE TABLE dispatches (
    dispatch_id       UUID PRIMARY KEY,
    order_id          UUID NOT NULL REFERENCES orders (order_id),
    business_id       UUID NOT NULL,
    customer_id       UUID NOT NULL,
    correlation_id    UUID NOT NULL,
    -- The plugin the part was handed to when it arrived.
    plugin            TEXT NOT NULL,
    status            TEXT NOT NULL,
    lines             JSONB NOT NULL,
    shipping_address  JSONB NOT NULL,
    reference         TEXT,
    carrier           TEXT,
    tracking_number   TEXT,
    reason            TEXT,
    -- Tries of the plugin's delivery so far, and why the last one failed.
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    -- A part not confirmed by then is declined with reason `timeout`.
    confirm_by        TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT dispatches_one_per_order_and_business UNIQUE (order_id, business_id),
    CONSTRAINT dispatches_status_known CHECK (status IN
        ('queued', 'sent', 'confirmed', 'shipped', 'delivered', 'declined', 'cancelled')),
    CONSTRAINT dispatches_declined_says_why CHECK ((status = 'declined') = (reason IS NOT NULL)),
    CONSTRAINT dispatches_shipped_has_tracking CHECK
        (status NOT IN ('shipped', 'delivered') OR (carrier IS NOT NULL AND tracking_number IS NOT NULL))
);
-- A business's queue, newest first.
CREATE INDEX dispatches_by_business ON dispatches (business_id, created_at DESC, dispatch_id DESC);
-- What the confirmation deadline sweep reads.
CREATE INDEX dispatches_awaiting_confirmation ON dispatches (confirm_by)
    WHERE status IN ('queued', 'sent');

-- Action links (email) that were used; a link works once.
CREATE TABLE used_action_links (
    link_id      UUID PRIMARY KEY,
    dispatch_id  UUID NOT NULL REFERENCES dispatches (dispatch_id),
    used_at      TIMESTAMPTZ NOT NULL
);

-- Secrets the service generates for itself when none is configured (the
-- action links' signing key), so every replica and restart agrees on them.
CREATE TABLE generated_secrets (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
