//! One template per kind: what the customer reads in the inbox and the email
//! (the email's subject is the title, its text the body, its HTML the same
//! words in [`email_html`]).
//!
//! The templates are typed Rust rather than a template language: each takes
//! the event it words, so a field that is renamed or missing is a compile
//! error here, not a render failure in a consumer that would dead-letter the
//! event at run time; and every kind has a test below. The cost is that
//! changing a sentence means a release, which is how the rest of the
//! service's rules change too.
//!
//! The words stay ASCII so that every mail client shows them as written,
//! without depending on the body's transfer encoding.

use shared_events::dispatch::{
    OrderConfirmed, OrderDeclined, OrderDelivered, OrderDispatched, OrderShipped,
};
use shared_events::order::{CancellationReason, OrderCancelled, OrderCreated};
use shared_events::payment::{PaymentAmount, PaymentMethod, PaymentRefunded, PaymentSuccessful};
use uuid::Uuid;

use super::{Kind, Notice};

/// `order_created`: the order exists.
pub fn placed(event: &OrderCreated) -> Notice {
    let items: i64 = event
        .lines
        .iter()
        .map(|line| i64::from(line.quantity))
        .sum();
    let items = plural(items, "item", "items");
    notice(
        event.order_id,
        Kind::Placed,
        String::new(),
        "Order placed",
        format!(
            "Thank you! We received your order {} with {items}. We will tell you when it is paid.",
            event.order_id
        ),
    )
}

/// `payment_successful`: the money is captured.
pub fn paid(event: &PaymentSuccessful) -> Notice {
    let method = match event.payment_method {
        PaymentMethod::CreditCard => "credit card",
        PaymentMethod::PayPal => "PayPal",
        PaymentMethod::ApplePay => "Apple Pay",
    };
    notice(
        event.order_id,
        Kind::Paid,
        String::new(),
        "Payment received",
        format!(
            "We received your payment of {} by {method} for order {}. We are passing it on to the shop.",
            money(event.amount_minor, &event.currency),
            event.order_id
        ),
    )
}

/// An order whose points cover all of it goes from `pending` straight to
/// `processing`: there is no payment to wait for. Its fact is the same as
/// [`paid`]'s, so whichever arrives first is the one told.
pub fn paid_with_points(order_id: Uuid) -> Notice {
    notice(
        order_id,
        Kind::Paid,
        String::new(),
        "Order paid with points",
        format!(
            "Your points cover order {order_id} in full; there is nothing to pay. We are passing it on to the shop."
        ),
    )
}

/// `order_dispatched`: one business's part reached that business.
pub fn dispatched(event: &OrderDispatched) -> Notice {
    notice(
        event.order_id,
        Kind::Dispatched,
        event.business_id.to_string(),
        "Order sent to the shop",
        format!(
            "Your order {} was sent to the shop{}. We will tell you when the shop confirms it.",
            event.order_id,
            reference(event.reference.as_deref())
        ),
    )
}

/// `order_confirmed`: the business accepted its part.
pub fn confirmed(event: &OrderConfirmed) -> Notice {
    notice(
        event.order_id,
        Kind::Confirmed,
        event.business_id.to_string(),
        "Order confirmed",
        format!(
            "The shop confirmed your order {}{}. It is being prepared for shipping.",
            event.order_id,
            reference(event.reference.as_deref())
        ),
    )
}

/// `order_shipped`: the part is with a carrier.
pub fn shipped(event: &OrderShipped) -> Notice {
    notice(
        event.order_id,
        Kind::Shipped,
        event.business_id.to_string(),
        "Order shipped",
        format!(
            "Your order {} is on its way with {}. Tracking number: {}.",
            event.order_id, event.carrier, event.tracking_number
        ),
    )
}

/// `order_delivered`: the part arrived.
pub fn delivered(event: &OrderDelivered) -> Notice {
    notice(
        event.order_id,
        Kind::Delivered,
        event.business_id.to_string(),
        "Order delivered",
        format!(
            "Your order {} was delivered{}. Enjoy!",
            event.order_id,
            reference(event.reference.as_deref())
        ),
    )
}

/// `order_declined`: the part will not be fulfilled and is refunded.
pub fn declined(event: &OrderDeclined) -> Notice {
    let why = match event.reason.as_str() {
        "timeout" => "the shop did not confirm it in time".to_owned(),
        "dispatch_failed" => "we could not reach the shop".to_owned(),
        words => format!("the shop said: \"{}\"", words.trim()),
    };
    notice(
        event.order_id,
        Kind::Declined,
        event.business_id.to_string(),
        "Part of your order was declined",
        format!(
            "A shop cannot fulfil its part of your order {}: {why}. You get the money and points you paid for that part back.",
            event.order_id
        ),
    )
}

/// `payment_refunded`: money went back, once per refund.
pub fn refunded(event: &PaymentRefunded) -> Notice {
    let why = match event.reason.as_str() {
        "customer_cancelled" => " because you cancelled it",
        "declined_by_business" | "declined" => " for the part a shop declined",
        "out_of_stock" => " because items were out of stock",
        _ => "",
    };
    notice(
        event.order_id,
        Kind::Refunded,
        event.refund_id.to_string(),
        "Refund issued",
        format!(
            "We refunded {} for order {}{why}. Your bank may take a few days to show it.",
            money(event.amount_minor, &event.currency),
            event.order_id
        ),
    )
}

/// `order_cancelled`: the order ended unfulfilled.
pub fn cancelled(event: &OrderCancelled) -> Notice {
    let why = match event.reason {
        CancellationReason::OutOfStock => "some of its items are out of stock",
        CancellationReason::PaymentFailed => "the payment did not go through",
        CancellationReason::DeclinedByBusiness => "the shops could not fulfil it",
        CancellationReason::CustomerCancelled => "you cancelled it",
    };
    notice(
        event.order_id,
        Kind::Cancelled,
        String::new(),
        "Order cancelled",
        format!(
            "Your order {} was cancelled because {why}. Nothing stays charged: any payment and points come back to you.",
            event.order_id
        ),
    )
}

/// The email's HTML alternative: the same title and body, escaped.
pub fn email_html(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<h1>{}</h1>\n<p>{}</p>\n<p style=\"color: #666\">Hey, Blue!</p>\n</body></html>\n",
        escape(title),
        escape(body)
    )
}

fn notice(order_id: Uuid, kind: Kind, fact_key: String, title: &str, body: String) -> Notice {
    Notice {
        order_id,
        kind,
        fact_key,
        title: title.to_owned(),
        body,
    }
}

/// `12.50 USD`, with the currency's own number of decimals.
fn money(amount_minor: i64, currency: &str) -> String {
    format!(
        "{} {}",
        PaymentAmount::from_minor(amount_minor, currency),
        currency.to_ascii_uppercase()
    )
}

fn reference(reference: Option<&str>) -> String {
    match reference.map(str::trim) {
        Some(reference) if !reference.is_empty() => format!(" (shop reference {reference})"),
        _ => String::new(),
    }
}

fn plural(count: i64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use shared_events::payment::PaymentStatus;
    use shared_events::StockLine;

    use super::*;

    fn order() -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
    }

    fn business() -> Uuid {
        Uuid::from_u128(0xb1)
    }

    #[test]
    fn placed_counts_the_items_and_names_the_order() {
        let notice = placed(&OrderCreated {
            order_id: order(),
            customer_id: Uuid::from_u128(1),
            lines: vec![
                StockLine {
                    offering_id: Uuid::from_u128(2),
                    quantity: 2,
                },
                StockLine {
                    offering_id: Uuid::from_u128(3),
                    quantity: 1,
                },
            ],
        });
        assert_eq!(notice.kind, Kind::Placed);
        assert_eq!(notice.fact_key, "");
        assert_eq!(notice.title, "Order placed");
        assert!(notice.body.contains("3 items"), "{}", notice.body);
        assert!(notice.body.contains(&order().to_string()));
    }

    #[test]
    fn paid_shows_the_amount_in_the_currency_and_the_method() {
        let notice = paid(&PaymentSuccessful {
            order_id: order(),
            customer_id: Uuid::from_u128(1),
            payment_method: PaymentMethod::PayPal,
            transaction_id: "PAY-1".to_owned(),
            currency: "USD".to_owned(),
            payment_status: PaymentStatus::Success,
            amount_minor: 1250,
            provider: "paypal".to_owned(),
            authorization_id: Uuid::from_u128(4),
        });
        assert!(
            notice.body.contains("12.50 USD by PayPal"),
            "{}",
            notice.body
        );
        assert_eq!(notice.kind, paid_with_points(order()).kind);
        assert_eq!(notice.fact_key, paid_with_points(order()).fact_key);
    }

    #[test]
    fn each_part_is_its_own_fact_and_shipped_carries_carrier_and_tracking() {
        let shipped = shipped(&OrderShipped {
            order_id: order(),
            business_id: business(),
            dispatch_id: Uuid::from_u128(5),
            carrier: "UPS".to_owned(),
            tracking_number: "1Z999AA10123456784".to_owned(),
        });
        assert_eq!(shipped.fact_key, business().to_string());
        assert!(
            shipped
                .body
                .contains("on its way with UPS. Tracking number: 1Z999AA10123456784."),
            "{}",
            shipped.body
        );
        let dispatched = dispatched(&OrderDispatched {
            order_id: order(),
            business_id: business(),
            dispatch_id: Uuid::from_u128(5),
            reference: Some("PO-77".to_owned()),
        });
        assert!(dispatched.body.contains("(shop reference PO-77)"));
        let confirmed = confirmed(&OrderConfirmed {
            order_id: order(),
            business_id: business(),
            dispatch_id: Uuid::from_u128(5),
            reference: None,
        });
        assert!(!confirmed.body.contains("reference"), "{}", confirmed.body);
        let delivered = delivered(&OrderDelivered {
            order_id: order(),
            business_id: business(),
            dispatch_id: Uuid::from_u128(5),
            reference: None,
        });
        assert_eq!(
            [dispatched.kind, confirmed.kind, delivered.kind],
            [Kind::Dispatched, Kind::Confirmed, Kind::Delivered]
        );
    }

    #[test]
    fn a_decline_says_why_in_words_a_customer_understands() {
        let decline = |reason: &str| {
            declined(&OrderDeclined {
                order_id: order(),
                business_id: business(),
                dispatch_id: Uuid::from_u128(5),
                reason: reason.to_owned(),
            })
            .body
        };
        assert!(decline("timeout").contains("did not confirm it in time"));
        assert!(decline("dispatch_failed").contains("could not reach the shop"));
        assert!(decline("  sold out  ").contains("the shop said: \"sold out\""));
        assert!(decline("timeout").contains("back"));
    }

    #[test]
    fn a_refund_is_one_fact_per_refund_with_its_amount() {
        let refund_id = Uuid::from_u128(6);
        let notice = refunded(&PaymentRefunded {
            order_id: order(),
            refund_id,
            amount_minor: 500,
            currency: "JPY".to_owned(),
            reason: "customer_cancelled".to_owned(),
        });
        assert_eq!(notice.fact_key, refund_id.to_string());
        assert!(
            notice.body.contains("We refunded 500 JPY for order")
                && notice.body.contains("because you cancelled it"),
            "{}",
            notice.body
        );
    }

    #[test]
    fn a_cancellation_gives_its_reason() {
        let cancel = |reason| {
            cancelled(&OrderCancelled {
                order_id: order(),
                customer_id: Uuid::from_u128(1),
                reason,
            })
            .body
        };
        assert!(cancel(CancellationReason::OutOfStock).contains("out of stock"));
        assert!(cancel(CancellationReason::PaymentFailed).contains("payment did not go through"));
        assert!(cancel(CancellationReason::DeclinedByBusiness).contains("could not fulfil"));
        assert!(cancel(CancellationReason::CustomerCancelled).contains("you cancelled it"));
    }

    #[test]
    fn the_html_email_escapes_what_a_shop_wrote() {
        let html = email_html("Order <b>", "the shop said: \"<script>\" & more");
        assert!(html.contains("<h1>Order &lt;b&gt;</h1>"), "{html}");
        assert!(
            html.contains("&quot;&lt;script&gt;&quot; &amp; more"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }
}
