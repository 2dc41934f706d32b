//! The one table of who may call what (DESIGN §2 and §3, the README's
//! endpoint lists): every documented operation of every service, the roles
//! it admits, and whose resource its path names.

use serde_json::{json, Value};
use uuid::Uuid;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    None,
    Civilian,
    Charity,
    Officer,
    /// The business whose resources the world's civilian bought from.
    Business,
    /// The other business of the shop.
    OtherBusiness,
    Admin,
    Service,
}

pub const CALLERS: [Caller; 8] = [
    Caller::None,
    Caller::Civilian,
    Caller::Charity,
    Caller::Officer,
    Caller::Business,
    Caller::OtherBusiness,
    Caller::Admin,
    Caller::Service,
];

impl Caller {
    pub fn name(self) -> &'static str {
        match self {
            Caller::None => "none",
            Caller::Civilian => "civilian",
            Caller::Charity => "charity",
            Caller::Officer => "officer",
            Caller::Business => "business",
            Caller::OtherBusiness => "other-business",
            Caller::Admin => "admin",
            Caller::Service => "service",
        }
    }
}

/// Which callers a route admits.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, without a token too.
    Public,
    /// Anyone, its own signature or link decides (webhooks, email links,
    /// the payment page): every caller gets the same answer.
    Signed,
    /// Any signed-in caller.
    SignedIn,
    /// These roles; other signed-in callers 403.
    Roles(&'static [Caller]),
}

/// Whose resource the path names, and what another's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Nobody's in particular (the caller's own by definition, or shared).
    Nobody,
    /// A customer's (order, checkout, notification): another customer's is
    /// 404, its existence not revealed.
    Customer,
    /// A business named in the path: acting for another business is 403.
    Business,
    /// A business's part of an order: another business's is 404.
    Part,
    /// A business's offering (public, so another's is 403, not hidden).
    Offering,
    /// A customer's that only they may touch (a notification): anyone
    /// else's answer is 404, whatever their role.
    Recipient,
}

/// Whose resource a case names, from the caller's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Own,
    Another,
}

/// One documented operation.
pub struct Route {
    pub service: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub owner: Owner,
    /// A valid body (`Null`: none), so the answer is about who asks.
    pub body: fn(&Ids) -> Value,
    /// Sends an `Idempotency-Key`.
    pub keyed: bool,
}

/// The ids a body may need.
pub struct Ids {
    pub civilian: Uuid,
    pub charity: Uuid,
    pub charity_name: String,
    /// The business whose resource the case names.
    pub business: Uuid,
}

/// What DESIGN §2 prescribes for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Status(u16),
    /// Admitted: not 401, 403 or 404, and no 5xx.
    Allowed,
    /// Whatever the signature decides, the same for every caller.
    SameForEveryone,
}

impl Route {
    pub fn expect(&self, caller: Caller, whose: Whose) -> Expect {
        let roles = match self.access {
            Access::Public => return Expect::Allowed,
            Access::Signed => return Expect::SameForEveryone,
            _ if caller == Caller::None => return Expect::Status(401),
            Access::SignedIn => None,
            Access::Roles(roles) => Some(roles),
        };
        if roles.is_some_and(|roles| !roles.contains(&caller)) {
            return Expect::Status(403);
        }
        let business = matches!(caller, Caller::Business | Caller::OtherBusiness);
        let customer = matches!(caller, Caller::Civilian | Caller::Charity);
        match (self.owner, whose) {
            (Owner::Recipient, Whose::Own) if customer => Expect::Allowed,
            (Owner::Recipient, _) => Expect::Status(404),
            (_, Whose::Own) | (Owner::Nobody, _) => Expect::Allowed,
            (Owner::Customer, Whose::Another) if customer => Expect::Status(404),
            (Owner::Business | Owner::Offering, Whose::Another) if business => Expect::Status(403),
            (Owner::Part, Whose::Another) if business => Expect::Status(404),
            _ => Expect::Allowed,
        }
    }
}

fn none(_: &Ids) -> Value {
    Value::Null
}

fn empty(_: &Ids) -> Value {
    json!({})
}

const SHOPPERS: &[Caller] = &[Caller::Civilian, Caller::Charity];
const BUSINESS_OR_ADMIN: &[Caller] = &[Caller::Business, Caller::OtherBusiness, Caller::Admin];
const ADMIN: &[Caller] = &[Caller::Admin];
const SERVICE: &[Caller] = &[Caller::Service];
const SERVICE_OR_ADMIN: &[Caller] = &[Caller::Service, Caller::Admin];

macro_rules! route {
    ($service:literal $method:literal $path:literal, $access:expr, $owner:expr, $body:expr) => {
        route!($service $method $path, $access, $owner, $body, false)
    };
    ($service:literal $method:literal $path:literal, $access:expr, $owner:expr, $body:expr, $keyed:expr) => {
        Route {
            service: $service,
            method: $method,
            path: $path,
            access: $access,
            owner: $owner,
            body: $body,
            keyed: $keyed,
        }
    };
}

/// Every operation of the fleet.
pub fn routes() -> Vec<Route> {
    use Access::*;
    use Owner::*;
    let mut routes = Vec::new();
    // What every service serves to anyone: probes, metrics, its document.
    for service in super::SERVICES {
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            routes.push(Route {
                service,
                method: "GET",
                path,
                access: Public,
                owner: Nobody,
                body: none,
                keyed: false,
            });
        }
    }
    routes.extend([
        // catalog
        route!("catalog" "POST" "/v1/businesses", Roles(ADMIN), Nobody, |_| json!({
            "name": format!("Authz {}", Uuid::new_v4()), "contact_email": "authz@example.com"})),
        route!("catalog" "GET" "/v1/businesses", Public, Nobody, none),
        route!("catalog" "GET" "/v1/businesses/{id}", Public, Nobody, none),
        route!("catalog" "GET" "/v1/offerings", Public, Nobody, none),
        route!("catalog" "GET" "/v1/offerings/{id}", Public, Nobody, none),
        route!("catalog" "POST" "/v1/offerings", Roles(BUSINESS_OR_ADMIN), Offering, |ids| json!({
            "business_id": ids.business, "title": "Authz", "description": "made by the authorization matrix",
            "kind": "product", "price_minor": 100, "currency": "USD", "points_price": 100, "stock": null,
            "active": false}), true),
        route!("catalog" "PATCH" "/v1/offerings/{id}", Roles(BUSINESS_OR_ADMIN), Offering,
            |_| json!({"description": "changed by the authorization matrix"})),
        // cart
        route!("cart" "GET" "/v1/cart", Roles(SHOPPERS), Nobody, none),
        route!("cart" "DELETE" "/v1/cart", Roles(SHOPPERS), Nobody, none),
        route!("cart" "PUT" "/v1/cart/items/{offering_id}", Roles(SHOPPERS), Nobody, |_| json!({"quantity": 1})),
        route!("cart" "DELETE" "/v1/cart/items/{offering_id}", Roles(SHOPPERS), Nobody, none),
        route!("cart" "GET" "/v1/carts/{user_id}", Roles(SERVICE), Nobody, none),
        // checkout
        route!("checkout" "POST" "/v1/checkouts/quote", Roles(SHOPPERS), Nobody, empty),
        route!("checkout" "POST" "/v1/checkouts", Roles(SHOPPERS), Nobody, |_| json!({
            "points_to_redeem": 0,
            "payment": {"provider": "sandbox", "payment_method": "pm_card_chargeDeclined"},
            "shipping_address": {"name": "Authz", "line1": "1 Main Street", "city": "Springfield",
                "postal_code": "12345", "country": "US"}}), true),
        route!("checkout" "POST" "/v1/checkouts/{checkout_id}/confirm", Roles(SHOPPERS), Customer, none),
        route!("checkout" "GET" "/v1/checkouts/{checkout_id}", Roles(SHOPPERS), Customer, none),
        // user-points
        route!("user-points" "GET" "/v1/points/balance", SignedIn, Nobody, none),
        route!("user-points" "GET" "/v1/points/ledger", SignedIn, Nobody, none),
        route!("user-points" "GET" "/v1/points/balances/{user_id}", Roles(SERVICE), Nobody, none),
        route!("user-points" "POST" "/v1/points/awards", Roles(SERVICE_OR_ADMIN), Nobody, |ids| json!({
            "award_id": Uuid::new_v4(), "user_id": ids.civilian, "points": 1,
            "reason": "authorization matrix"})),
        route!("user-points" "POST" "/v1/points/reservations", Roles(SERVICE), Nobody, |ids| json!({
            "user_id": ids.civilian, "order_id": Uuid::new_v4(), "checkout_id": Uuid::new_v4(),
            "points": 1, "ttl_seconds": 60})),
        route!("user-points" "DELETE" "/v1/points/reservations/{reservation_id}", Roles(SERVICE), Nobody, none),
        route!("user-points" "POST" "/v1/points/charities", Roles(ADMIN), Nobody, |ids| json!({
            "charity_id": ids.charity, "name": ids.charity_name})),
        route!("user-points" "GET" "/v1/points/charities", SignedIn, Nobody, none),
        route!("user-points" "POST" "/v1/points/donations", Roles(&[Caller::Officer]), Nobody, |ids| json!({
            "charity_id": ids.charity, "points": 1})),
        // payment-gateway
        route!("payment-gateway" "POST" "/v1/payments/authorizations", Roles(SERVICE), Nobody, |ids| json!({
            "order_id": Uuid::new_v4(), "checkout_id": Uuid::new_v4(), "customer_id": ids.civilian,
            "amount_minor": 100, "currency": "USD", "provider": "sandbox",
            "payment_method": "pm_card_chargeDeclined"}), true),
        route!("payment-gateway" "POST" "/v1/payments/{authorization_id}/confirm", Roles(SERVICE), Nobody, none),
        route!("payment-gateway" "POST" "/v1/payments/{authorization_id}/void", Roles(SERVICE), Nobody, none),
        route!("payment-gateway" "POST" "/v1/payments/orders/{order_id}/void", Roles(SERVICE), Nobody, none),
        route!("payment-gateway" "GET" "/v1/payments/{authorization_id}", Roles(SERVICE_OR_ADMIN), Nobody, none),
        route!("payment-gateway" "GET" "/v1/payments/sandbox/authentications/{authorization_id}", Signed, Nobody, none),
        route!("payment-gateway" "POST" "/v1/payments/sandbox/authentications/{authorization_id}", Signed, Nobody, none),
        route!("payment-gateway" "POST" "/v1/webhooks/stripe", Signed, Nobody, empty),
        route!("payment-gateway" "POST" "/v1/webhooks/paypal", Signed, Nobody, empty),
        // order
        route!("order" "GET" "/v1/orders", Roles(&[Caller::Civilian, Caller::Charity, Caller::Admin]), Nobody, none),
        route!("order" "GET" "/v1/orders/{id}", Roles(&[Caller::Civilian, Caller::Charity, Caller::Admin, Caller::Service]), Customer, none),
        route!("order" "POST" "/v1/orders/{id}/cancel", Roles(SHOPPERS), Customer, none),
        // dispatcher
        route!("dispatcher" "GET" "/v1/dispatch/businesses/{business_id}/orders", Roles(BUSINESS_OR_ADMIN), Business, none),
        route!("dispatcher" "POST" "/v1/dispatch/orders/{order_id}/confirm", Roles(BUSINESS_OR_ADMIN), Part, empty),
        route!("dispatcher" "POST" "/v1/dispatch/orders/{order_id}/decline", Roles(BUSINESS_OR_ADMIN), Part,
            |_| json!({"reason": "authorization matrix"})),
        route!("dispatcher" "POST" "/v1/dispatch/orders/{order_id}/shipments", Roles(BUSINESS_OR_ADMIN), Part,
            |_| json!({"carrier": "UPS", "tracking_number": "1Z999"})),
        route!("dispatcher" "POST" "/v1/dispatch/orders/{order_id}/delivered", Roles(BUSINESS_OR_ADMIN), Part, none),
        route!("dispatcher" "POST" "/v1/dispatch/orders/{order_id}/withdraw", Roles(SERVICE_OR_ADMIN), Nobody, none),
        route!("dispatcher" "PUT" "/v1/dispatch/integrations/{business_id}", Roles(ADMIN), Nobody,
            |_| json!({"plugin": "portal", "config": {}})),
        route!("dispatcher" "GET" "/v1/dispatch/integrations/{business_id}", Roles(ADMIN), Nobody, none),
        route!("dispatcher" "POST" "/v1/dispatch/webhooks/{business_id}", Signed, Nobody, empty),
        route!("dispatcher" "GET" "/v1/dispatch/actions/{token}", Signed, Nobody, none),
        route!("dispatcher" "POST" "/v1/dispatch/actions/{token}", Signed, Nobody, none),
        // notification
        route!("notification" "GET" "/v1/notifications", SignedIn, Nobody, none),
        route!("notification" "POST" "/v1/notifications/{notification_id}/read", SignedIn, Recipient, none),
    ]);
    routes
}
