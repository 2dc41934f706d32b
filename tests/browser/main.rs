//! The webshop in a real browser: headless Chromium, driven over WebDriver
//! (fantoccini and Debian's chromedriver; scripts/ensure-chromium installs
//! both), against the fleet as the launcher starts it. The pages' script
//! runs here, so these tests see what the cookie-keeping tests of
//! `tests/webshop` cannot: an order page that follows its order live.
//!
//! One fleet and one chromedriver serve every test (libtest-mimic, like the
//! journeys); the tests share the demo users, so they run one at a time.
//! Each saves a screenshot of every page it is shown in
//! `target/browser-artifacts/<test>/`.

use std::process::ExitCode;

use libtest_mimic::Arguments;
use test_harness::IdentityProvider;

use fixture::Fleet;

mod driver;
#[path = "../fixture/mod.rs"]
mod fixture;
mod oidc;
mod shop;

/// What every test gets: the fleet and the WebDriver server, and the
/// identity provider the fleet's webshop signs people in with.
pub struct World {
    pub fleet: Fleet,
    pub chromedriver: driver::Chromedriver,
    pub idp: IdentityProvider,
}

pub type Test = fixture::Test<World>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|world| Box::pin($module::$name(world))) as Test)),*]
    };
}

fn all() -> Vec<(&'static str, Test)> {
    tests![
        shop::a_civilian_pays_with_points_and_3d_secure_and_watches_the_business_ship_live,
        shop::a_declined_card_is_told_and_the_cart_is_unchanged,
        shop::a_form_posted_without_its_csrf_token_is_refused,
        shop::nobody_opens_another_users_order_page,
        shop::an_officer_gives_points_to_a_charity,
        shop::a_business_adds_an_offering_and_takes_it_off_sale_and_the_admin_sees_its_businesses,
        oidc::a_person_signs_in_through_the_identity_provider_on_either_replica_and_signs_out,
        oidc::a_callback_with_another_browsers_state_or_a_spent_code_is_refused,
    ]
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let start = async {
        let chromedriver = driver::Chromedriver::start().await;
        // The launcher hands this environment to every service: two
        // webshop replicas, both signing people in with the provider, and
        // services that accept its tokens (RS256, by its JWKS) beside the
        // demo users' HS256 ones.
        let idp = IdentityProvider::start().await;
        idp.register_client(oidc::CLIENT_ID, oidc::CLIENT_SECRET);
        let fleet = Fleet::start_with(&[
            ("HEYBLUE_REPLICAS", "webshop=2"),
            ("HEYBLUE_JWKS_URL", &idp.jwks_url()),
            ("HEYBLUE_WEBSHOP_OIDC_ISSUER", idp.issuer()),
            ("HEYBLUE_WEBSHOP_OIDC_CLIENT_ID", oidc::CLIENT_ID),
            ("HEYBLUE_WEBSHOP_OIDC_CLIENT_SECRET", oidc::CLIENT_SECRET),
        ])
        .await;
        World {
            fleet,
            chromedriver,
            idp,
        }
    };
    let code = fixture::run_on_one_world(&args, &all(), start, |world| world.fleet);
    eprintln!("screenshots: {}", driver::artifacts_root().display());
    code
}
