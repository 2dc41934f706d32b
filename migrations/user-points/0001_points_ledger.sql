-- The points ledger: one account row per user with running totals, and an
-- append-only list of entries that explains every change to them.

CREATE TABLE accounts (
    user_id     UUID PRIMARY KEY,
    available   BIGINT NOT NULL DEFAULT 0,
    reserved    BIGINT NOT NULL DEFAULT 0,
    awarded     BIGINT NOT NULL DEFAULT 0,
    received    BIGINT NOT NULL DEFAULT 0,
    spent       BIGINT NOT NULL DEFAULT 0,
    refunded    BIGINT NOT NULL DEFAULT 0,
    donated     BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accounts_available_not_negative CHECK (available >= 0),
    CONSTRAINT accounts_reserved_not_negative CHECK (reserved >= 0),
    -- available + reserved = lifetime_earned - lifetime_spent - donated
    CONSTRAINT accounts_balance_identity
        CHECK (available + reserved = awarded + received - (spent - refunded) - donated)
);

CREATE TABLE ledger_entries (
    seq         BIGSERIAL UNIQUE,
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    kind        TEXT NOT NULL
        CHECK (kind IN ('awarded', 'reserved', 'released', 'spent', 'refunded', 'donated', 'received')),
    points      BIGINT NOT NULL CHECK (points > 0),
    order_id    UUID,
    reference   TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_by_user ON ledger_entries (user_id, seq DESC);

-- One row per award ever credited; `award_id` makes crediting idempotent.
CREATE TABLE awards (
    award_id       UUID PRIMARY KEY,
    user_id        UUID NOT NULL,
    points         BIGINT NOT NULL CHECK (points > 0),
    reason         TEXT NOT NULL,
    connection_id  UUID,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
