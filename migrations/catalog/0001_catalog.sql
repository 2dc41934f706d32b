-- Businesses' storefront profiles, their offerings, and the stock each
-- order holds. The named constraints state the rules; the service maps them
-- to the client errors they mean.

CREATE TABLE businesses (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL,
    contact_email  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT businesses_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT businesses_contact_email_shape
        CHECK (char_length(contact_email) <= 254 AND contact_email LIKE '_%@_%')
);
CREATE INDEX businesses_newest ON businesses (created_at DESC, id DESC);

CREATE TABLE offerings (
    id            UUID PRIMARY KEY,
    business_id   UUID NOT NULL CONSTRAINT offerings_business_known REFERENCES businesses (id),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    price_minor   BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    points_price  BIGINT NOT NULL,
    -- Units still available to new orders; NULL is unlimited.
    stock         BIGINT,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Title words weigh more than description words in the ranking.
    search        TSVECTOR GENERATED ALWAYS AS (
                      setweight(to_tsvector('english', title), 'A')
                      || setweight(to_tsvector('english', description), 'B')
                  ) STORED,
    CONSTRAINT offerings_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT offerings_description_length CHECK (char_length(description) <= 5000),
    CONSTRAINT offerings_kind_known CHECK (kind IN ('product', 'voucher', 'service')),
    CONSTRAINT offerings_price_minor_in_range CHECK (price_minor BETWEEN 1 AND 100000000),
    CONSTRAINT offerings_points_price_in_range CHECK (points_price BETWEEN 1 AND 100000000),
    CONSTRAINT offerings_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
    -- Holds under any concurrency: a reservation that would take stock below
    -- zero fails instead of overselling.
    CONSTRAINT offerings_stock_not_negative CHECK (stock >= 0)
);
CREATE INDEX offerings_search ON offerings USING GIN (search);
CREATE INDEX offerings_newest ON offerings (created_at DESC, id DESC);
CREATE INDEX offerings_by_business ON offerings (business_id, created_at DESC, id DESC);

-- One row per order ever seen on `order_created`: the first delivery decides
-- the outcome, and every later one (redelivered or re-sent) answers with it.
-- `outcome` is NULL only inside the transaction that claims the order; that
-- transaction sets it before it commits.
CREATE TABLE stock_orders (
    order_id     UUID PRIMARY KEY,
    customer_id  UUID NOT NULL,
    outcome      TEXT CONSTRAINT stock_orders_outcome_known CHECK (outcome IN ('reserved', 'rejected')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The order's lines as requested, in order, and which of them were short.
CREATE TABLE stock_order_lines (
    order_id     UUID NOT NULL REFERENCES stock_orders (order_id),
    position     INTEGER NOT NULL,
    offering_id  UUID NOT NULL,
    quantity     BIGINT NOT NULL CONSTRAINT stock_order_lines_quantity_positive CHECK (quantity > 0),
    short        BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, position)
);

-- What a reserved order holds of each offering, and how much of it has been
-- released so far: a release never gives back more than was reserved, however
-- often it is requested.
CREATE TABLE stock_reservations (
    order_id     UUID NOT NULL REFERENCES stock_orders (order_id),
    offering_id  UUID NOT NULL REFERENCES offerings (id),
    reserved     BIGINT NOT NULL CONSTRAINT stock_reservations_reserved_positive CHECK (reserved > 0),
    released     BIGINT NOT NULL DEFAULT 0
        CONSTRAINT stock_reservations_released_not_negative CHECK (released >= 0),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stock_reservations_released_within_reserved CHECK (released <= reserved),
    PRIMARY KEY (order_id, offering_id)
);
