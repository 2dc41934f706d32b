//! The security headers every response carries, and the stricter ones for
//! HTML pages (the few pages services serve to a person's browser: the
//! sandbox 3-D Secure page, the dispatcher's email action pages).
//!
//! A response that already has one of these headers keeps its own: a page
//! that must post its form to another origin sets its own
//! `Content-Security-Policy` built with [`content_security_policy`].

use axum::{
    http::{header, HeaderValue},
    response::Response,
    Router,
};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy for HTML pages: everything from the service's own origin,
/// nothing inline, no framing (clickjacking), no `<base>` rewriting, and
/// forms only to the service itself. The pages use no script or style, so
/// nothing needs `'unsafe-inline'`.
pub const HTML_CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// [`HTML_CONTENT_SECURITY_POLICY`] whose forms may also lead to
/// `form_targets` (origins such as `https://shop.example`): browsers apply
/// `form-action` to the redirects that follow a form's submission too, so a
/// page that answers its form with a redirect elsewhere must name where.
pub fn content_security_policy<'a>(form_targets: impl IntoIterator<Item = &'a str>) -> String {
    let mut policy = HTML_CONTENT_SECURITY_POLICY.to_owned();
    for origin in form_targets {
        policy.push(' ');
        policy.push_str(origin);
    }
    policy
}

/// Wraps `router` in the layers that add the headers, so that every
/// response its routes and fallbacks produce carries them.
pub(crate) fn apply(router: Router) -> Router {
    let stack = ServiceBuilder::new()
        // A browser must never guess a type: a JSON body that echoes user
        // input must not be run as HTML or script.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Links out of a page must not carry its URL: the dispatcher's
        // action pages have their token in the path.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            frame_options_for_html as fn(&Response) -> Option<HeaderValue>,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            policy_for_html as fn(&Response) -> Option<HeaderValue>,
        ));
    router.layer(stack)
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        })
}

fn frame_options_for_html(response: &Response) -> Option<HeaderValue> {
    is_html(response).then(|| HeaderValue::from_static("DENY"))
}

fn policy_for_html(response: &Response) -> Option<HeaderValue> {
    is_html(response).then(|| HeaderValue::from_static(HTML_CONTENT_SECURITY_POLICY))
}
