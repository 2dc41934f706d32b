//! One buyer's order, through the public APIs only: fill the cart, quote,
//! check out with the sandbox card that authorizes without 3-D Secure,
//! then follow the order until it is `processing`.
//!
//! The way to `processing` is dated by the order's own history (its
//! `at`s, written by the order service on this machine's clock), measured
//! from the instant the checkout's answer arrived. So how often the order
//! is polled decides only when the journey ends, not the figure, and the
//! polling can stay slow enough not to be a load of its own.

use std::time::{Duration, Instant};

use rand::seq::index::sample;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::shop::{Shop, User};
use crate::stats::Recorder;

/// How each journey is played.
#[derive(Debug, Clone)]
pub struct JourneyOptions {
    /// Cart lines per order, each a different offering.
    pub lines: usize,
    /// Points redeemed per order (the card pays the rest).
    pub points: i64,
    /// How long after the checkout's answer the order is first asked
    /// for; each further wait is half as long again, up to [`MAX_POLL`].
    pub poll: Duration,
    /// Whether to follow the order at all: the commit census does not, so
    /// that it counts only what the order itself costs.
    pub follow: bool,
    /// How long an order may take to reach `processing` before the
    /// journey counts it as failed.
    pub give_up_after: Duration,
}

/// The longest wait between two looks at an order. The waits grow, so an
/// order that takes long is not asked for dozens of times: at a few
/// hundred orders a second the polls would otherwise be a load of their
/// own on the order service, which also runs the saga.
pub const MAX_POLL: Duration = Duration::from_secs(1);

/// The wait before the next look at an order, after waiting `last`.
pub fn next_poll(last: Duration) -> Duration {
    (last * 3 / 2).min(MAX_POLL)
}

/// Statuses an order reaches at or after `processing` on its way forward.
const PROCESSING_OR_LATER: [&str; 5] = [
    "processing",
    "dispatched",
    "confirmed",
    "shipped",
    "delivered",
];

#[derive(Deserialize)]
struct OrderBody {
    status: String,
    history: Vec<HistoryBody>,
    cancellation_reason: Option<String>,
}

#[derive(Deserialize)]
struct HistoryBody {
    status: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// What went wrong in a step, as the error table counts it.
struct Failed(String);

/// Plays one order for `user`. `window_end` is when the run stops
/// offering load: what is answered or completed by then counts toward the
/// run's rates. The order's id, when the checkout placed one.
pub async fn buy(
    shop: &Shop,
    user: &User,
    options: &JourneyOptions,
    recorder: &Recorder,
    window_end: OffsetDateTime,
) -> Option<Uuid> {
    recorder.update(|tally| tally.started += 1);
    match play(shop, user, options, recorder, window_end).await {
        Ok(order_id) => Some(order_id),
        Err(Failed(kind)) => {
            recorder.error(kind);
            None
        }
    }
}

async fn play(
    shop: &Shop,
    user: &User,
    options: &JourneyOptions,
    recorder: &Recorder,
    window_end: OffsetDateTime,
) -> Result<Uuid, Failed> {
    let picked: Vec<Uuid> = {
        let mut rng = rand::rng();
        let lines = options.lines.clamp(1, shop.offerings.len());
        sample(&mut rng, shop.offerings.len(), lines)
            .into_iter()
            .map(|index| shop.offerings[index])
            .collect()
    };
    for offering in picked {
        let url = format!("{}/v1/cart/items/{offering}", shop.cart);
        let began = Instant::now();
        call(
            shop,
            user,
            "cart",
            Method::PUT,
            &url,
            Some(json!({"quantity": 1})),
            None,
            &[StatusCode::OK],
        )
        .await?;
        let took = began.elapsed();
        recorder.update(|tally| tally.cart.record(took));
    }

    let began = Instant::now();
    call(
        shop,
        user,
        "quote",
        Method::POST,
        &format!("{}/v1/checkouts/quote", shop.checkout),
        Some(json!({"points_to_redeem": options.points})),
        None,
        &[StatusCode::OK],
    )
    .await?;
    let took = began.elapsed();
    recorder.update(|tally| tally.quote.record(took));

    let began = Instant::now();
    let answer = call(
        shop,
        user,
        "checkout",
        Method::POST,
        &format!("{}/v1/checkouts", shop.checkout),
        Some(json!({
            "points_to_redeem": options.points,
            "payment": {"provider": "sandbox", "payment_method": "pm_card_visa"},
            "shipping_address": {
                "name": "Load Buyer", "line1": "1 Main St", "city": "Springfield",
                "postal_code": "12345", "country": "US",
            },
        })),
        Some(Uuid::new_v4()),
        &[StatusCode::CREATED],
    )
    .await?;
    let took = began.elapsed();
    let answered = OffsetDateTime::now_utc();
    let order_id: Uuid = answer["order_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Failed("checkout: 201 without an order_id".to_owned()))?;
    recorder.update(|tally| {
        tally.checkout.record(took);
        tally.checkouts += 1;
        if answered <= window_end {
            tally.checkouts_in_window += 1;
        }
    });
    if options.follow {
        follow(
            shop, user, options, recorder, order_id, answered, window_end,
        )
        .await?;
    }
    Ok(order_id)
}

/// Asks for the order, ever less often, until it is `processing` (or
/// further), then records how long each stage took by its history. A poll
/// the order service refuses as overloaded is counted and made again.
async fn follow(
    shop: &Shop,
    user: &User,
    options: &JourneyOptions,
    recorder: &Recorder,
    order_id: Uuid,
    answered: OffsetDateTime,
    window_end: OffsetDateTime,
) -> Result<(), Failed> {
    let url = format!("{}/v1/orders/{order_id}", shop.orders);
    let deadline = Instant::now() + options.give_up_after;
    let mut wait = options.poll;
    loop {
        tokio::time::sleep(wait).await;
        wait = next_poll(wait);
        if Instant::now() > deadline {
            return Err(Failed(format!(
                "order: not processing within {} s",
                options.give_up_after.as_secs()
            )));
        }
        recorder.update(|tally| tally.polls += 1);
        let answer = match call(
            shop,
            user,
            "order",
            Method::GET,
            &url,
            None,
            None,
            &[StatusCode::OK, StatusCode::NOT_FOUND],
        )
        .await
        {
            Err(Failed(kind)) if kind.starts_with("order: 503") => {
                recorder.update(|tally| tally.polls_refused += 1);
                continue;
            }
            answer => answer?,
        };
        // Not there yet: the order service has not seen the checkout's event.
        if answer.is_null() {
            continue;
        }
        let order: OrderBody = serde_json::from_value(answer)
            .map_err(|error| Failed(format!("order: unexpected body: {error}")))?;
        if order.status == "cancelled" {
            return Err(Failed(format!(
                "order: cancelled ({})",
                order.cancellation_reason.unwrap_or_default()
            )));
        }
        if !is_processing_or_later(&order.status) {
            continue;
        }
        let at = |status: &str| {
            order
                .history
                .iter()
                .find(|entry| entry.status == status)
                .map(|entry| entry.at)
        };
        let processing = at("processing")
            .ok_or_else(|| Failed("order: past processing without it in its history".to_owned()))?;
        // answered → pending → payment_processing → processing, as HOPS names them.
        let stages = [
            answered,
            at("pending").unwrap_or(answered),
            at("payment_processing").unwrap_or(processing),
            processing,
        ];
        recorder.update(|tally| {
            tally.to_processing.record(between(answered, processing));
            for (hop, pair) in tally.hops.iter_mut().zip(stages.windows(2)) {
                hop.record(between(pair[0], pair[1]));
            }
            tally.completed += 1;
            if processing <= window_end {
                tally.completed_in_window += 1;
            }
        });
        return Ok(());
    }
}

/// Whether an order in `status` has been paid for and is on its way.
pub fn is_processing_or_later(status: &str) -> bool {
    PROCESSING_OR_LATER.contains(&status)
}

/// The order's status now, as its buyer sees it; `None` when it is not
/// there (yet) or the call failed.
pub async fn status(shop: &Shop, user: &User, order_id: Uuid) -> Option<String> {
    let url = format!("{}/v1/orders/{order_id}", shop.orders);
    let answer = call(
        shop,
        user,
        "order",
        Method::GET,
        &url,
        None,
        None,
        &[StatusCode::OK],
    )
    .await
    .ok()?;
    answer["status"].as_str().map(str::to_owned)
}

/// `to - from`, or zero when `to` came first (the order can be created
/// before the checkout's answer has reached the buyer).
fn between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or_default()
}

/// One call as `user`: the answer's JSON body (null for a `404` that
/// `ok` allows), or what failed, named by step, status and problem code.
#[allow(clippy::too_many_arguments)]
async fn call(
    shop: &Shop,
    user: &User,
    step: &str,
    method: Method,
    url: &str,
    body: Option<Value>,
    idempotency_key: Option<Uuid>,
    ok: &[StatusCode],
) -> Result<Value, Failed> {
    let mut request = shop.client.request(method, url).bearer_auth(&user.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key.to_string());
    }
    let response = request
        .send()
        .await
        .map_err(|error| Failed(transport(step, &error)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| Failed(transport(step, &error)))?;
    if !ok.contains(&status) {
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|problem| problem["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(Failed(
            format!("{step}: {} {code}", status.as_u16())
                .trim_end()
                .to_owned(),
        ));
    }
    if status == StatusCode::NOT_FOUND {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|error| {
        Failed(format!(
            "{step}: {status} with a body that is not JSON: {error}"
        ))
    })
}

fn transport(step: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("{step}: timed out")
    } else if error.is_connect() {
        format!("{step}: connection refused")
    } else {
        format!("{step}: transport error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_grow_by_half_up_to_a_second() {
        let waits: Vec<u128> =
            std::iter::successors(Some(Duration::from_millis(20)), |w| Some(next_poll(*w)))
                .take(12)
                .map(|wait| wait.as_millis())
                .collect();
        assert_eq!(waits[..4], [20, 30, 45, 67]);
        assert_eq!(*waits.last().expect("waits"), 1000);
        assert!(waits.windows(2).all(|pair| pair[0] <= pair[1]));
    }
}
