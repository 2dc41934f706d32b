-- The Idempotency-Key that began each checkout, so a request retried after
-- its first try died with its process carries on the same checkout (the
-- same order, reservation and authorization) instead of starting another.
ALTER TABLE checkouts ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX checkouts_by_key ON checkouts (customer_id, idempotency_key);
