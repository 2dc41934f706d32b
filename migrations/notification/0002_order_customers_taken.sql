-- Every event about an order takes its `order_customers` row, made on the
-- first event about it (before its customer may be known), instead of an
-- advisory lock: one statement locks the order, records what the event says
-- of its customer and reads what is known. `learnt_in` is the transaction
-- that last taught something (the customer, or a new address), so the
-- statement can say whether it was this one.

ALTER TABLE order_customers ALTER COLUMN customer_id DROP NOT NULL;
ALTER TABLE order_customers ADD COLUMN learnt_in XID8;
