-- An order's row is made by the first event about it, and a row made so has
-- learnt nothing: no fact of its order can be parked, nor a notification of
-- it be waiting for an address, before its row exists. Facts parked before
-- rows were made that way have none; their orders get one now, so the event
-- that names their customer learns it and moves them into the inbox.

INSERT INTO order_customers (order_id)
SELECT DISTINCT order_id FROM parked_notifications
ON CONFLICT (order_id) DO NOTHING;
