-- Reservations for checkout (and the refunds of what they spent), charities
-- and officers' donations to them. Every movement of points they cause is an
-- entry in `ledger_entries` and a change to `accounts`, in one transaction.

CREATE TABLE reservations (
    reservation_id  UUID PRIMARY KEY,
    user_id         UUID NOT NULL,
    order_id        UUID NOT NULL,
    checkout_id     UUID NOT NULL,
    -- What checkout asked to hold; `held` is what is held for it now.
    points          BIGINT NOT NULL CHECK (points > 0),
    held            BIGINT NOT NULL,
    spent           BIGINT NOT NULL DEFAULT 0,
    refunded        BIGINT NOT NULL DEFAULT 0,
    -- Points the order counted on that could not be held again after the
    -- reservation had expired before its order was seen.
    shortfall       BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    released_by     TEXT,
    -- Set once the order is known: from then on it never expires.
    bound_at        TIMESTAMPTZ,
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reservations_one_per_order UNIQUE (order_id),
    CONSTRAINT reservations_state_known CHECK (state IN ('held', 'released', 'spent')),
    CONSTRAINT reservations_released_says_by_whom
        CHECK ((state = 'released') = (released_by IS NOT NULL)
               AND (released_by IS NULL OR released_by IN ('checkout', 'expiry', 'order'))),
    CONSTRAINT reservations_only_held_holds CHECK (held BETWEEN 0 AND points AND (state = 'held' OR held = 0)),
    CONSTRAINT reservations_spent_within_points CHECK (spent BETWEEN 0 AND points),
    CONSTRAINT reservations_refunds_within_spent CHECK (refunded BETWEEN 0 AND spent),
    CONSTRAINT reservations_shortfall_within_points CHECK (shortfall BETWEEN 0 AND points)
);
-- What the expiry sweep reads.
CREATE INDEX reservations_expiring ON reservations (expires_at)
    WHERE state = 'held' AND bound_at IS NULL;

-- One row per `points_refund_requested` applied; `refund_id` makes it once.
CREATE TABLE refunds (
    refund_id       UUID PRIMARY KEY,
    reservation_id  UUID NOT NULL REFERENCES reservations,
    order_id        UUID NOT NULL,
    user_id         UUID NOT NULL,
    business_id     UUID NOT NULL,
    requested       BIGINT NOT NULL CHECK (requested > 0),
    -- What was given back: less than requested once the order's spent
    -- points are used up.
    points          BIGINT NOT NULL CHECK (points BETWEEN 0 AND requested),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE charities (
    charity_id  UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX charities_by_name ON charities (name, charity_id);

CREATE TABLE donations (
    donation_id  UUID PRIMARY KEY,
    officer_id   UUID NOT NULL,
    charity_id   UUID NOT NULL,
    points       BIGINT NOT NULL CHECK (points > 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A donation to an unregistered charity is refused by this key.
    CONSTRAINT donations_charity_registered FOREIGN KEY (charity_id) REFERENCES charities
);
