-- The fleet's database, as crates/pg-cluster/src/provision.rs provisions it
-- for the local stack and the tests (DESIGN §1): one database `heyblue`, and
-- per service a login role that owns a schema of the same name and can touch
-- nothing else.
--
-- The postgres image runs this once, as the superuser, when its data volume
-- is empty. The passwords are development defaults that match the
-- DATABASE_URLs in docker-compose.yml; change both anywhere that is not a
-- developer's machine.

CREATE DATABASE heyblue;

CREATE ROLE "webshop"      WITH LOGIN PASSWORD 'webshop_local_pw';
CREATE ROLE "catalog"      WITH LOGIN PASSWORD 'catalog_local_pw';
CREATE ROLE "cart"         WITH LOGIN PASSWORD 'cart_local_pw';
CREATE ROLE "checkout"     WITH LOGIN PASSWORD 'checkout_local_pw';
CREATE ROLE "points"       WITH LOGIN PASSWORD 'points_local_pw';
CREATE ROLE "payment"      WITH LOGIN PASSWORD 'payment_local_pw';
CREATE ROLE "orders"       WITH LOGIN PASSWORD 'orders_local_pw';
CREATE ROLE "dispatcher"   WITH LOGIN PASSWORD 'dispatcher_local_pw';
CREATE ROLE "notification" WITH LOGIN PASSWORD 'notification_local_pw';

\connect heyblue

-- Nobody but the service roles may connect, and nobody may create objects in
-- schema public (PostgreSQL 15 already withholds the latter).
REVOKE ALL ON DATABASE heyblue FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT CONNECT ON DATABASE heyblue TO "webshop";
CREATE SCHEMA "webshop" AUTHORIZATION "webshop";
REVOKE ALL ON SCHEMA "webshop" FROM PUBLIC;
ALTER ROLE "webshop" IN DATABASE heyblue SET search_path = "webshop";

GRANT CONNECT ON DATABASE heyblue TO "catalog";
CREATE SCHEMA "catalog" AUTHORIZATION "catalog";
REVOKE ALL ON SCHEMA "catalog" FROM PUBLIC;
ALTER ROLE "catalog" IN DATABASE heyblue SET search_path = "catalog";

GRANT CONNECT ON DATABASE heyblue TO "cart";
CREATE SCHEMA "cart" AUTHORIZATION "cart";
REVOKE ALL ON SCHEMA "cart" FROM PUBLIC;
ALTER ROLE "cart" IN DATABASE heyblue SET search_path = "cart";

GRANT CONNECT ON DATABASE heyblue TO "checkout";
CREATE SCHEMA "checkout" AUTHORIZATION "checkout";
REVOKE ALL ON SCHEMA "checkout" FROM PUBLIC;
ALTER ROLE "checkout" IN DATABASE heyblue SET search_path = "checkout";

GRANT CONNECT ON DATABASE heyblue TO "points";
CREATE SCHEMA "points" AUTHORIZATION "points";
REVOKE ALL ON SCHEMA "points" FROM PUBLIC;
ALTER ROLE "points" IN DATABASE heyblue SET search_path = "points";

GRANT CONNECT ON DATABASE heyblue TO "payment";
CREATE SCHEMA "payment" AUTHORIZATION "payment";
REVOKE ALL ON SCHEMA "payment" FROM PUBLIC;
ALTER ROLE "payment" IN DATABASE heyblue SET search_path = "payment";

GRANT CONNECT ON DATABASE heyblue TO "orders";
CREATE SCHEMA "orders" AUTHORIZATION "orders";
REVOKE ALL ON SCHEMA "orders" FROM PUBLIC;
ALTER ROLE "orders" IN DATABASE heyblue SET search_path = "orders";

GRANT CONNECT ON DATABASE heyblue TO "dispatcher";
CREATE SCHEMA "dispatcher" AUTHORIZATION "dispatcher";
REVOKE ALL ON SCHEMA "dispatcher" FROM PUBLIC;
ALTER ROLE "dispatcher" IN DATABASE heyblue SET search_path = "dispatcher";

GRANT CONNECT ON DATABASE heyblue TO "notification";
CREATE SCHEMA "notification" AUTHORIZATION "notification";
REVOKE ALL ON SCHEMA "notification" FROM PUBLIC;
ALTER ROLE "notification" IN DATABASE heyblue SET search_path = "notification";
