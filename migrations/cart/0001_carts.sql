-- One cart per user, the same on every device. A user without a row has
-- an empty cart; the row appears with the first item.
CREATE TABLE carts (
    user_id    UUID PRIMARY KEY,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE cart_items (
    user_id     UUID NOT NULL REFERENCES carts (user_id) ON DELETE CASCADE,
    offering_id UUID NOT NULL,
    quantity    INT NOT NULL CONSTRAINT cart_items_quantity_range CHECK (quantity BETWEEN 1 AND 99),
    -- Items are listed in the order they were first added; changing a
    -- quantity keeps an item's place.
    position    BIGINT GENERATED ALWAYS AS IDENTITY,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, offering_id)
);

-- Orders whose bought quantities were taken out of their customer's cart:
-- a re-delivered or re-sent `order_submitted` lowers nothing twice.
CREATE TABLE checked_out_orders (
    order_id   UUID PRIMARY KEY,
    user_id    UUID NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
