-- Orders, their lines, one fulfillment per business, refunds, the status
-- history, and every command the saga issued (so a re-drive publishes the
-- same command, with the same business ids, again). The named constraints
-- state the state machines' vocabulary; the saga enforces the transitions.

CREATE TABLE orders (
    id                   UUID PRIMARY KEY,
    -- Newest-first paging key: order ids are minted by checkout and say nothing of time.
    seq                  BIGSERIAL NOT NULL UNIQUE,
    customer_id          UUID NOT NULL,
    customer_email       TEXT,
    checkout_id          UUID NOT NULL,
    currency             TEXT NOT NULL,
    subtotal_minor       BIGINT NOT NULL,
    discount_minor       BIGINT NOT NULL,
    total_minor          BIGINT NOT NULL,
    points_applied       BIGINT NOT NULL,
    shipping_address     JSONB NOT NULL,
    status               TEXT NOT NULL,
    cancellation_reason  TEXT,
    stock                TEXT NOT NULL,
    -- Null when the total is 0 and nothing was authorized.
    authorization_id     UUID,
    payment_provider     TEXT,
    transaction_id       TEXT,
    payment_state        TEXT,
    -- Null when the checkout redeemed no points.
    reservation_id       UUID,
    points_state         TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    -- When the stuck-order job last published this order's pending commands again.
    redriven_at          TIMESTAMPTZ,
    CONSTRAINT orders_status_known CHECK (status IN ('pending', 'payment_processing', 'processing',
        'dispatched', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    CONSTRAINT orders_cancelled_has_reason CHECK ((status = 'cancelled') = (cancellation_reason IS NOT NULL)),
    CONSTRAINT orders_cancellation_reason_known CHECK (cancellation_reason IN
        ('out_of_stock', 'payment_failed', 'declined_by_business', 'customer_cancelled')),
    CONSTRAINT orders_stock_known CHECK (stock IN ('awaiting', 'reserved', 'rejected', 'released')),
    CONSTRAINT orders_payment_complete CHECK ((authorization_id IS NULL) = (payment_state IS NULL)
        AND (authorization_id IS NULL) = (payment_provider IS NULL)),
    CONSTRAINT orders_payment_state_known CHECK (payment_state IN
        ('authorized', 'capture_requested', 'captured', 'voided', 'failed')),
    CONSTRAINT orders_points_complete CHECK ((reservation_id IS NULL) = (points_state IS NULL)),
    CONSTRAINT orders_points_state_known CHECK (points_state IN ('reserved', 'spent', 'released')),
    CONSTRAINT orders_amounts_add_up CHECK (total_minor = subtotal_minor - discount_minor
        AND total_minor >= 0 AND discount_minor >= 0 AND points_applied >= 0)
);
CREATE INDEX orders_by_customer ON orders (customer_id, seq DESC);
CREATE INDEX orders_newest ON orders (seq DESC);
CREATE INDEX orders_open_by_age ON orders (updated_at)
    WHERE status NOT IN ('delivered', 'cancelled');

CREATE TABLE order_lines (
    order_id          UUID NOT NULL REFERENCES orders (id),
    position          INT NOT NULL,
    offering_id       UUID NOT NULL,
    business_id       UUID NOT NULL,
    title             TEXT NOT NULL,
    quantity          INT NOT NULL,
    unit_price_minor  BIGINT NOT NULL,
    points_applied    BIGINT NOT NULL,
    discount_minor    BIGINT NOT NULL,
    amount_due_minor  BIGINT NOT NULL,
    PRIMARY KEY (order_id, position),
    CONSTRAINT order_lines_quantity_positive CHECK (quantity >= 1),
    CONSTRAINT order_lines_amount_adds_up
        CHECK (amount_due_minor = unit_price_minor * quantity - discount_minor AND amount_due_minor >= 0)
);

CREATE TABLE fulfillments (
    order_id         UUID NOT NULL REFERENCES orders (id),
    business_id      UUID NOT NULL,
    -- Parts keep the order in which their businesses first appear in the lines.
    position         INT NOT NULL,
    status           TEXT NOT NULL,
    carrier          TEXT,
    tracking_number  TEXT,
    reason           TEXT,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, business_id),
    CONSTRAINT fulfillments_status_known CHECK (status IN
        ('queued', 'sent', 'confirmed', 'shipped', 'delivered', 'declined', 'cancelled')),
    CONSTRAINT fulfillments_tracking_complete CHECK ((carrier IS NULL) = (tracking_number IS NULL))
);

CREATE TABLE refunds (
    refund_id     UUID PRIMARY KEY,
    order_id      UUID NOT NULL REFERENCES orders (id),
    -- Null for a refund of the whole order (a capture that arrived after its cancellation).
    business_id   UUID,
    amount_minor  BIGINT NOT NULL,
    points        BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL,
    failure       TEXT,
    at            TIMESTAMPTZ NOT NULL,
    -- The order the refunds were made in; two made at one instant keep it.
    made          BIGINT GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT refunds_state_known CHECK (state IN ('requested', 'refunded', 'failed')),
    CONSTRAINT refunds_not_negative CHECK (amount_minor >= 0 AND points >= 0)
);
CREATE INDEX refunds_of_order ON refunds (order_id, made);

CREATE TABLE order_history (
    order_id  UUID NOT NULL REFERENCES orders (id),
    position  INT NOT NULL,
    status    TEXT NOT NULL,
    reason    TEXT,
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- Every command and fact the saga published for an order. `status_after`
-- is the order's status once the transition that issued it was applied: a
-- stuck order's pending commands are those issued on entering its status.
CREATE TABLE order_commands (
    id              BIGSERIAL PRIMARY KEY,
    order_id        UUID NOT NULL REFERENCES orders (id),
    event_id        UUID NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    status_after    TEXT NOT NULL,
    -- Set for refund commands: re-published while the refund is unanswered.
    refund_id       UUID,
    correlation_id  UUID NOT NULL,
    payload         JSONB NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX order_commands_of_order ON order_commands (order_id, id);
