//! The provider layer as the gateway core uses it: each provider's
//! outcomes in our terms, against local servers that speak Stripe's and
//! PayPal's wire formats.

mod support;

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use payment_gateway::domain::{AuthorizationId, Currency, CustomerId, Money, RefundId};
use payment_gateway::providers::apple_pay::ApplePay;
use payment_gateway::providers::paypal::PayPal;
use payment_gateway::providers::sandbox::Sandbox;
use payment_gateway::providers::stripe::Stripe;
use payment_gateway::providers::{
    AuthorizeOutcome, AuthorizeRequest, CaptureRequest, ConfirmRequest, CustomerVerdict, Lookup,
    PaymentMethod, PaymentProvider, PaymentState, ProviderError, ProviderReference, Providers,
    RefundRequest, VoidRequest, WebhookError, WebhookEventKind,
};
use payment_gateway::settings::{GatewaySettings, PayPalSettings, StripeSettings};
use support::paypal::{self as fake_paypal, FakePayPal};
use support::stripe::{self as fake_stripe, FakeStripe};
use uuid::Uuid;

const PUBLIC_BASE_URL: &str = "http://127.0.0.1:8085";
const RETURN_URL: &str = "https://shop.heyblue.test/checkout/return";

fn usd(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::new("USD").expect("USD")).expect("positive amount")
}

fn authorize_request(payment_method: &str, amount_minor: i64) -> AuthorizeRequest {
    AuthorizeRequest {
        authorization_id: AuthorizationId(Uuid::now_v7()),
        customer_id: CustomerId(Uuid::now_v7()),
        amount: usd(amount_minor),
        payment_method: PaymentMethod::new(payment_method).expect("payment method"),
        return_url: Some(RETURN_URL.to_owned()),
    }
}

fn confirm_request(
    request: &AuthorizeRequest,
    reference: &ProviderReference,
    customer_verdict: Option<CustomerVerdict>,
) -> ConfirmRequest {
    ConfirmRequest {
        authorization_id: request.authorization_id,
        reference: reference.clone(),
        return_url: request.return_url.clone(),
        customer_verdict,
    }
}

fn capture_request(request: &AuthorizeRequest, reference: &ProviderReference) -> CaptureRequest {
    CaptureRequest {
        authorization_id: request.authorization_id,
        reference: reference.clone(),
        amount: request.amount.clone(),
    }
}

fn authorized(outcome: AuthorizeOutcome) -> ProviderReference {
    match outcome {
        AuthorizeOutcome::Authorized { reference } => reference,
        other => panic!("expected authorized, got {other:?}"),
    }
}

fn requires_action(outcome: AuthorizeOutcome) -> (ProviderReference, String) {
    match outcome {
        AuthorizeOutcome::RequiresAction {
            reference,
            redirect_url,
        } => (reference, redirect_url),
        other => panic!("expected requires_action, got {other:?}"),
    }
}

fn declined(outcome: AuthorizeOutcome) -> String {
    match outcome {
        AuthorizeOutcome::Declined { decline_code } => decline_code,
        other => panic!("expected declined, got {other:?}"),
    }
}

// ---------------------------------------------------------------- sandbox

fn sandbox() -> Sandbox {
    Sandbox::new(PUBLIC_BASE_URL)
}

#[tokio::test]
async fn sandbox_visa_authorizes_and_captures() {
    let sandbox = sandbox();
    let request = authorize_request("pm_card_visa", 1_000);
    let reference = authorized(sandbox.authorize(&request).await.expect("authorize"));
    let captured = sandbox
        .capture(&capture_request(&request, &reference))
        .await
        .expect("capture");
    assert_eq!(captured.amount, usd(1_000));
    assert!(!captured.transaction_id.as_str().is_empty());
}

#[tokio::test]
async fn sandbox_declined_cards_report_their_decline_codes() {
    let sandbox = sandbox();
    let generic = sandbox
        .authorize(&authorize_request("pm_card_chargeDeclined", 1_000))
        .await
        .expect("an answer");
    assert_eq!(declined(generic), "generic_decline");
    let funds = sandbox
        .authorize(&authorize_request(
            "pm_card_chargeDeclinedInsufficientFunds",
            1_000,
        ))
        .await
        .expect("an answer");
    assert_eq!(declined(funds), "insufficient_funds");
}

#[tokio::test]
async fn sandbox_authentication_required_sends_the_customer_to_the_gateways_page_then_authorizes_on_confirm(
) {
    let sandbox = sandbox();
    let request = authorize_request("pm_card_authenticationRequired", 1_000);
    let (reference, url) = requires_action(sandbox.authorize(&request).await.expect("authorize"));
    assert_eq!(
        url,
        format!(
            "{PUBLIC_BASE_URL}/v1/payments/sandbox/authentications/{}",
            request.authorization_id
        )
    );
    let approved = sandbox
        .confirm(&confirm_request(
            &request,
            &reference,
            Some(CustomerVerdict::Approved),
        ))
        .await
        .expect("confirm");
    let reference = authorized(approved);
    sandbox
        .capture(&capture_request(&request, &reference))
        .await
        .expect("an authenticated payment captures");
}

#[tokio::test]
async fn sandbox_confirm_without_a_verdict_authorizes_and_a_failed_verdict_declines() {
    let sandbox = sandbox();
    let request = authorize_request("pm_card_authenticationRequired", 1_000);
    let (reference, _) = requires_action(sandbox.authorize(&request).await.expect("authorize"));
    let unanswered = sandbox
        .confirm(&confirm_request(&request, &reference, None))
        .await
        .expect("confirm");
    authorized(unanswered);
    let failed = sandbox
        .confirm(&confirm_request(
            &request,
            &reference,
            Some(CustomerVerdict::Failed),
        ))
        .await
        .expect("confirm");
    assert_eq!(declined(failed), "authentication_failed");
}

#[tokio::test]
async fn sandbox_capture_fails_method_authorizes_but_its_capture_is_refused() {
    let sandbox = sandbox();
    let request = authorize_request("pm_sandbox_capture_fails", 1_000);
    let reference = authorized(sandbox.authorize(&request).await.expect("authorize"));
    let error = sandbox
        .capture(&capture_request(&request, &reference))
        .await
        .expect_err("the capture fails");
    assert!(
        matches!(&error, ProviderError::Refused { code, .. } if code == "capture_failed"),
        "{error:?}"
    );
    assert!(!error.is_safe_to_retry() && !error.requires_lookup());
}

#[tokio::test]
async fn sandbox_refuses_an_unknown_payment_method_and_has_no_minimum() {
    let sandbox = sandbox();
    let error = sandbox
        .authorize(&authorize_request("pm_card_amex", 1_000))
        .await
        .expect_err("unknown method");
    assert!(matches!(error, ProviderError::Refused { .. }), "{error:?}");
    assert_eq!(
        sandbox.minimum_amount(&Currency::new("USD").expect("USD")),
        None
    );
    let one_cent = authorize_request("pm_card_visa", 1);
    authorized(sandbox.authorize(&one_cent).await.expect("authorize"));
}

// --------------------------------------------------------------- registry

#[tokio::test]
async fn only_providers_with_credentials_are_registered() {
    let providers = Providers::from_settings(&GatewaySettings::default()).expect("providers");
    assert_eq!(providers.names(), vec!["sandbox"]);
    assert!(providers.get("stripe").is_none());

    let settings = GatewaySettings {
        stripe: Some(StripeSettings::new(
            fake_stripe::SECRET_KEY,
            "http://127.0.0.1:9",
        )),
        paypal: Some(PayPalSettings::new("id", "secret", "http://127.0.0.1:9")),
        ..GatewaySettings::default()
    };
    let providers = Providers::from_settings(&settings).expect("providers");
    assert_eq!(
        providers.names(),
        vec!["sandbox", "stripe", "apple_pay", "paypal"]
    );
    let paypal = providers.get("paypal").expect("registered");
    assert_eq!(paypal.method_kind(), shared_events::PaymentMethod::PayPal);
}

// ----------------------------------------------------------------- stripe

fn stripe_settings(fake: &FakeStripe) -> StripeSettings {
    let mut settings = StripeSettings::new(fake_stripe::SECRET_KEY, &fake.base_url);
    settings.webhook_secret = Some(fake_stripe::WEBHOOK_SECRET.to_owned().into());
    settings.timeout = Duration::from_millis(500);
    settings
}

fn stripe(fake: &FakeStripe) -> Stripe {
    Stripe::new(&stripe_settings(fake)).expect("Stripe client")
}

#[tokio::test]
async fn stripe_authorizes_a_manual_capture_payment_intent_keyed_by_our_id() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 2_500);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));
    assert!(reference.as_str().starts_with("pi_"), "{reference}");

    let intent = fake.intent(reference.as_str()).expect("created at Stripe");
    assert_eq!(intent["status"], "requires_capture");
    assert_eq!(intent["amount"], 2_500);
    assert_eq!(intent["currency"], "usd");
    assert_eq!(
        intent["metadata"]["authorization_id"],
        request.authorization_id.to_string()
    );
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/payment_intents")
        .expect("a create request");
    assert_eq!(create.param("capture_method"), Some("manual"));
    assert_eq!(create.param("confirm"), Some("true"));
    assert_eq!(
        create.idempotency_key,
        Some(format!("authorize:{}", request.authorization_id))
    );
}

#[tokio::test]
async fn stripe_three_d_secure_requires_action_then_confirm_authorizes() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_authenticationRequired", 2_500);
    let (reference, url) = requires_action(stripe.authorize(&request).await.expect("authorize"));
    assert_eq!(url, format!("{}/3d_secure/{reference}", fake.base_url));

    // Before the customer finished 3-D Secure, confirm still needs action.
    let early = stripe
        .confirm(&confirm_request(&request, &reference, None))
        .await
        .expect("confirm");
    requires_action(early);

    fake.complete_authentication(reference.as_str(), true);
    let confirmed = stripe
        .confirm(&confirm_request(&request, &reference, None))
        .await
        .expect("confirm");
    assert_eq!(authorized(confirmed), reference);
}

#[tokio::test]
async fn stripe_failed_three_d_secure_is_declined_on_confirm() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_authenticationRequired", 2_500);
    let (reference, _) = requires_action(stripe.authorize(&request).await.expect("authorize"));
    fake.complete_authentication(reference.as_str(), false);
    let outcome = stripe
        .confirm(&confirm_request(&request, &reference, None))
        .await
        .expect("confirm");
    assert_eq!(declined(outcome), "payment_intent_authentication_failure");
}

#[tokio::test]
async fn stripe_declined_card_reports_its_decline_code() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let generic = stripe
        .authorize(&authorize_request("pm_card_chargeDeclined", 2_500))
        .await
        .expect("a decline is an answer");
    assert_eq!(declined(generic), "generic_decline");
    let funds = stripe
        .authorize(&authorize_request(
            "pm_card_chargeDeclinedInsufficientFunds",
            2_500,
        ))
        .await
        .expect("a decline is an answer");
    assert_eq!(declined(funds), "insufficient_funds");
}

#[tokio::test]
async fn stripe_captures_then_refunds_part_of_the_payment() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 5_000);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));
    let captured = stripe
        .capture(&capture_request(&request, &reference))
        .await
        .expect("capture");
    assert_eq!(captured.transaction_id, reference);
    assert_eq!(captured.amount, usd(5_000));
    assert_eq!(fake.captures(), 1);

    let refund_id = RefundId(Uuid::now_v7());
    let refund = RefundRequest {
        refund_id,
        authorization_id: request.authorization_id,
        reference: reference.clone(),
        transaction_id: captured.transaction_id.clone(),
        amount: usd(1_200),
    };
    let refunded = stripe.refund(&refund).await.expect("refund");
    assert_eq!(refunded.amount, usd(1_200));
    assert!(!refunded.pending);
    assert!(refunded.refund_reference.as_str().starts_with("re_"));

    let state = stripe
        .lookup(&Lookup::Refund {
            refund_id,
            reference: reference.clone(),
            transaction_id: captured.transaction_id,
        })
        .await
        .expect("lookup");
    assert_eq!(
        state,
        PaymentState::Refunded {
            refund_reference: refunded.refund_reference,
            amount_minor: 1_200,
            pending: false,
        }
    );
    let refund_call = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/refunds" && r.method == "POST")
        .expect("a refund request");
    assert_eq!(
        refund_call.idempotency_key,
        Some(format!("refund:{refund_id}"))
    );
}

#[tokio::test]
async fn stripe_void_cancels_the_payment_intent() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 5_000);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));
    stripe
        .void(&VoidRequest {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("void");
    let state = stripe
        .lookup(&Lookup::Authorization {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("lookup");
    assert_eq!(state, PaymentState::Voided);
    let error = stripe
        .capture(&capture_request(&request, &reference))
        .await
        .expect_err("a voided payment cannot be captured");
    assert!(matches!(error, ProviderError::Refused { .. }), "{error:?}");
    assert_eq!(fake.captures(), 0);
}

#[tokio::test]
async fn apple_pay_token_is_processed_through_stripe() {
    let fake = FakeStripe::start().await;
    let apple_pay = ApplePay::new(stripe(&fake));
    let request = authorize_request("tok_visa", 3_000);
    let reference = authorized(apple_pay.authorize(&request).await.expect("authorize"));
    let intent = fake.intent(reference.as_str()).expect("a PaymentIntent");
    let payment_method = intent["payment_method"].as_str().expect("a payment method");
    assert!(payment_method.starts_with("pm_"), "{payment_method}");
    let captured = apple_pay
        .capture(&capture_request(&request, &reference))
        .await
        .expect("capture");
    assert_eq!(captured.amount, usd(3_000));
    assert_eq!(
        apple_pay.method_kind(),
        shared_events::PaymentMethod::ApplePay
    );
}

#[tokio::test]
async fn stripe_capture_whose_answer_times_out_is_resolved_by_lookup_without_charging_again() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 4_000);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));

    fake.delay_next_capture(Duration::from_secs(2));
    let error = stripe
        .capture(&capture_request(&request, &reference))
        .await
        .expect_err("the answer is lost");
    assert!(error.requires_lookup(), "{error:?}");

    let state = stripe
        .lookup(&Lookup::Authorization {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("lookup");
    assert_eq!(
        state,
        PaymentState::Captured {
            transaction_id: reference,
            amount_minor: 4_000,
        }
    );
    assert_eq!(fake.captures(), 1);
}

#[tokio::test]
async fn stripe_capture_retried_with_its_idempotency_key_captures_once() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 4_000);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));
    let capture = capture_request(&request, &reference);
    let first = stripe.capture(&capture).await.expect("capture");
    let again = stripe.capture(&capture).await.expect("the same answer");
    assert_eq!(first, again);
    assert_eq!(fake.captures(), 1);
    let keys: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/capture"))
        .map(|r| r.idempotency_key)
        .collect();
    let key = format!("capture:{}", request.authorization_id);
    assert_eq!(keys, vec![Some(key.clone()), Some(key)]);
}

#[tokio::test]
async fn stripe_unreachable_before_sending_is_safe_to_retry() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let settings =
        StripeSettings::new(fake_stripe::SECRET_KEY, &format!("http://127.0.0.1:{port}"));
    let stripe = Stripe::new(&settings).expect("client");
    let error = stripe
        .authorize(&authorize_request("pm_card_visa", 1_000))
        .await
        .expect_err("nothing listens");
    assert!(error.is_safe_to_retry(), "{error:?}");
}

#[tokio::test]
async fn stripe_minimum_is_fifty_cents_in_usd() {
    let fake = FakeStripe::start().await;
    let minimum = stripe(&fake).minimum_amount(&Currency::new("USD").expect("USD"));
    assert_eq!(minimum, Some(usd(50)));
}

fn stripe_webhook_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "stripe-signature",
        HeaderValue::from_str(signature).expect("header"),
    );
    headers
}

#[tokio::test]
async fn stripe_webhook_with_a_valid_signature_is_accepted_and_translated() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let request = authorize_request("pm_card_visa", 4_000);
    let reference = authorized(stripe.authorize(&request).await.expect("authorize"));
    let body = fake.event(
        "payment_intent.amount_capturable_updated",
        reference.as_str(),
    );
    let signature = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, fake_stripe::now(), &body);
    let event = stripe
        .verify_webhook(&stripe_webhook_headers(&signature), &body)
        .await
        .expect("a genuine event");
    assert!(event.event_id.starts_with("evt_"));
    assert_eq!(event.kind, WebhookEventKind::PaymentAuthorized);
    assert_eq!(event.object_id.as_deref(), Some(reference.as_str()));
    assert_eq!(event.authorization_id, Some(request.authorization_id));
}

#[tokio::test]
async fn stripe_webhook_with_an_invalid_stale_or_foreign_signature_is_refused() {
    let fake = FakeStripe::start().await;
    let stripe = stripe(&fake);
    let body = fake.event("payment_intent.succeeded", "pi_unknown");
    let now = fake_stripe::now();

    let tampered = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, now, b"{\"id\":\"evt_x\"}");
    let stale = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, now - 600, &body);
    let foreign = FakeStripe::signature("whsec_someone_else", now, &body);
    for (signature, expected) in [
        (tampered, "bad"),
        (stale, "stale"),
        (foreign, "bad"),
        ("t=1,v1=zz".to_owned(), "bad"),
    ] {
        let error = stripe
            .verify_webhook(&stripe_webhook_headers(&signature), &body)
            .await
            .expect_err("refused");
        match (expected, &error) {
            ("bad", WebhookError::BadSignature) | ("stale", WebhookError::Stale) => {}
            _ => panic!("expected {expected}, got {error:?}"),
        }
    }
    let unsigned = stripe
        .verify_webhook(&HeaderMap::new(), &body)
        .await
        .expect_err("no signature");
    assert!(
        matches!(unsigned, WebhookError::MissingSignature(_)),
        "{unsigned:?}"
    );
}

// ----------------------------------------------------------------- paypal

fn paypal(fake: &FakePayPal) -> PayPal {
    let mut settings = PayPalSettings::new(
        fake_paypal::CLIENT_ID,
        fake_paypal::CLIENT_SECRET,
        &fake.base_url,
    );
    settings.webhook_id = Some(fake_paypal::WEBHOOK_ID.to_owned());
    PayPal::new(&settings, PUBLIC_BASE_URL).expect("PayPal client")
}

/// Authorizes through the buyer's approval; returns the authorized reference.
async fn paypal_authorized(
    fake: &FakePayPal,
    paypal: &PayPal,
    request: &AuthorizeRequest,
) -> ProviderReference {
    let (order, _) = requires_action(paypal.authorize(request).await.expect("create order"));
    fake.approve(order.as_str());
    authorized(
        paypal
            .confirm(&confirm_request(request, &order, None))
            .await
            .expect("authorize order"),
    )
}

#[tokio::test]
async fn paypal_answers_the_buyers_approval_link_as_requires_action() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let request = authorize_request("paypal", 1_999);
    let (order, url) = requires_action(paypal.authorize(&request).await.expect("create order"));
    assert_eq!(url, format!("{}/checkoutnow?token={order}", fake.base_url));
    let stored = fake.order(order.as_str()).expect("an order at PayPal");
    assert_eq!(stored["intent"], "AUTHORIZE");
    assert_eq!(stored["purchase_units"][0]["amount"]["value"], "19.99");
    assert_eq!(
        stored["purchase_units"][0]["amount"]["currency_code"],
        "USD"
    );

    // Not approved yet: confirm sends the buyer back to the same link.
    let early = paypal
        .confirm(&confirm_request(&request, &order, None))
        .await
        .expect("confirm");
    assert_eq!(requires_action(early), (order, url));
}

#[tokio::test]
async fn paypal_authorizes_captures_and_refunds_after_approval() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let request = authorize_request("paypal", 5_000);
    let reference = paypal_authorized(&fake, &paypal, &request).await;
    let state = paypal
        .lookup(&Lookup::Authorization {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("lookup");
    assert_eq!(state, PaymentState::Authorized);

    let captured = paypal
        .capture(&capture_request(&request, &reference))
        .await
        .expect("capture");
    assert_eq!(captured.amount, usd(5_000));

    let refund_id = RefundId(Uuid::now_v7());
    let refund = RefundRequest {
        refund_id,
        authorization_id: request.authorization_id,
        reference: reference.clone(),
        transaction_id: captured.transaction_id.clone(),
        amount: usd(1_250),
    };
    let refunded = paypal.refund(&refund).await.expect("refund");
    assert_eq!(refunded.amount, usd(1_250));
    let state = paypal
        .lookup(&Lookup::Refund {
            refund_id,
            reference: reference.clone(),
            transaction_id: captured.transaction_id.clone(),
        })
        .await
        .expect("lookup");
    assert_eq!(
        state,
        PaymentState::Refunded {
            refund_reference: refunded.refund_reference,
            amount_minor: 1_250,
            pending: false,
        }
    );

    let ids: Vec<String> = fake.request_ids().into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        ids,
        vec![
            format!("authorize:{}", request.authorization_id),
            format!("confirm:{}", request.authorization_id),
            format!("capture:{}", request.authorization_id),
            format!("refund:{refund_id}"),
        ]
    );
}

#[tokio::test]
async fn paypal_capture_retried_with_its_request_id_captures_once() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let request = authorize_request("paypal", 5_000);
    let reference = paypal_authorized(&fake, &paypal, &request).await;
    let capture = capture_request(&request, &reference);
    let first = paypal.capture(&capture).await.expect("capture");
    let again = paypal.capture(&capture).await.expect("the same answer");
    assert_eq!(first, again);
}

#[tokio::test]
async fn paypal_void_releases_the_authorization() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let request = authorize_request("paypal", 5_000);
    let reference = paypal_authorized(&fake, &paypal, &request).await;
    paypal
        .void(&VoidRequest {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("void");
    let state = paypal
        .lookup(&Lookup::Authorization {
            authorization_id: request.authorization_id,
            reference: reference.clone(),
        })
        .await
        .expect("lookup");
    assert_eq!(state, PaymentState::Voided);
    let error = paypal
        .capture(&capture_request(&request, &reference))
        .await
        .expect_err("a voided authorization cannot be captured");
    assert!(matches!(error, ProviderError::Refused { .. }), "{error:?}");
}

#[tokio::test]
async fn paypal_renews_an_expired_token_once_and_goes_on() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let request = authorize_request("paypal", 5_000);
    requires_action(paypal.authorize(&request).await.expect("create order"));
    assert_eq!(fake.token_requests(), 1);

    fake.expire_tokens();
    let other = authorize_request("paypal", 700);
    requires_action(
        paypal
            .authorize(&other)
            .await
            .expect("create order after renewal"),
    );
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn paypal_renews_a_token_before_its_lifetime_ends() {
    let fake = FakePayPal::start(Duration::from_secs(1)).await;
    let paypal = paypal(&fake);
    requires_action(
        paypal
            .authorize(&authorize_request("paypal", 5_000))
            .await
            .expect("create order"),
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    requires_action(
        paypal
            .authorize(&authorize_request("paypal", 700))
            .await
            .expect("create order"),
    );
    assert_eq!(fake.token_requests(), 2);
}

fn paypal_webhook_headers(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in FakePayPal::webhook_headers(body) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header"),
        );
    }
    headers
}

#[tokio::test]
async fn paypal_webhook_is_verified_by_paypal_and_translated() {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let paypal = paypal(&fake);
    let authorization_id = Uuid::now_v7();
    let body = serde_json::to_vec(&serde_json::json!({
        "id": "WH-2WR32451HC0233532-67976317FL4543714",
        "event_version": "1.0",
        "create_time": "2026-11-06T14:30:00.000Z",
        "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": {"id": "3C679366HH908993F", "status": "COMPLETED",
                     "custom_id": authorization_id.to_string()},
    }))
    .expect("event");
    let event = paypal
        .verify_webhook(&paypal_webhook_headers(&body), &body)
        .await
        .expect("genuine");
    assert_eq!(event.event_id, "WH-2WR32451HC0233532-67976317FL4543714");
    assert_eq!(event.kind, WebhookEventKind::PaymentCaptured);
    assert_eq!(
        event.authorization_id,
        Some(AuthorizationId(authorization_id))
    );

    // The same headers over another body: PayPal says it is not genuine.
    let forged = br#"{"id":"WH-forged","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{}}"#;
    let error = paypal
        .verify_webhook(&paypal_webhook_headers(&body), forged)
        .await
        .expect_err("forged");
    assert!(matches!(error, WebhookError::BadSignature), "{error:?}");
}
