-- Authorizations and everything done with them afterwards: captures, voids,
-- refunds, the provider webhooks that report on them, and the verdicts the
-- sandbox's authentication page recorded. Provider calls happen outside
-- these transactions; each row says how far its call got.

CREATE TABLE authorizations (
    authorization_id    UUID PRIMARY KEY,
    order_id            UUID NOT NULL,
    checkout_id         UUID NOT NULL,
    customer_id         UUID NOT NULL,
    provider            TEXT NOT NULL,
    payment_method      TEXT NOT NULL,
    -- The provider's handle on the payment, once it answered.
    provider_reference  TEXT,
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    return_url          TEXT,
    redirect_url        TEXT,
    -- `pending`: the provider has been asked and not yet answered.
    state               TEXT NOT NULL,
    decline_code        TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT authorizations_one_per_order UNIQUE (order_id),
    CONSTRAINT authorizations_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT authorizations_state_known
        CHECK (state IN ('pending', 'requires_action', 'authorized', 'declined', 'voided', 'captured')),
    CONSTRAINT authorizations_declined_says_why
        CHECK ((state = 'declined') = (decline_code IS NOT NULL)),
    CONSTRAINT authorizations_answered_has_reference
        CHECK (state IN ('pending', 'declined') OR provider_reference IS NOT NULL)
);

-- "Void whatever this order has, now or later": left by the order void, so
-- an authorization still in flight for the order is voided when it lands.
CREATE TABLE order_voids (
    order_id    UUID PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One capture per authorization, whoever asked for it.
CREATE TABLE captures (
    authorization_id  UUID PRIMARY KEY REFERENCES authorizations,
    amount_minor      BIGINT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'pending',
    transaction_id    TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT captures_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT captures_state_known CHECK (state IN ('pending', 'succeeded', 'failed')),
    CONSTRAINT captures_succeeded_has_transaction
        CHECK ((state = 'succeeded') = (transaction_id IS NOT NULL))
);

-- One void per authorization: at the provider, after the authorization was
-- marked voided here.
CREATE TABLE voids (
    authorization_id  UUID PRIMARY KEY REFERENCES authorizations,
    state             TEXT NOT NULL DEFAULT 'pending',
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT voids_state_known CHECK (state IN ('pending', 'done'))
);

-- One refund per `refund_id`, minted by the order service.
CREATE TABLE refunds (
    refund_id         UUID PRIMARY KEY,
    authorization_id  UUID NOT NULL,
    order_id          UUID NOT NULL,
    business_id       UUID,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    reason            TEXT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'pending',
    refund_reference  TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refunds_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT refunds_state_known CHECK (state IN ('pending', 'succeeded', 'failed')),
    CONSTRAINT refunds_failed_says_why CHECK (state <> 'failed' OR last_error IS NOT NULL)
);
CREATE INDEX refunds_by_authorization ON refunds (authorization_id, created_at);

-- Provider webhooks as delivered, processed from here by a job.
CREATE TABLE webhook_events (
    provider           TEXT NOT NULL,
    provider_event_id  TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    -- The translated event (`WebhookEvent`), as the job reads it.
    event              JSONB NOT NULL,
    processed_at       TIMESTAMPTZ,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT webhook_events_once_per_provider_event PRIMARY KEY (provider, provider_event_id)
);

-- What the customer answered on the sandbox's authentication page.
CREATE TABLE sandbox_verdicts (
    authorization_id  UUID PRIMARY KEY REFERENCES authorizations,
    verdict           TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT sandbox_verdicts_known CHECK (verdict IN ('approved', 'failed'))
);
