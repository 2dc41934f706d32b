//! The webshop on the whole fleet, as a person meets it in a browser: the
//! launcher (the README's run command's code path) starts the webshop and
//! the eight services behind it; a cookie-keeping client signs in on the
//! demo sign-in page and uses the pages as a browser would, without
//! JavaScript. The public API is used through the webshop's own origin.
//!
//! One fleet serves every test (libtest-mimic, like the journeys). The
//! tests share the demo users, so they run one at a time.

use std::process::ExitCode;

use libtest_mimic::Arguments;

use fixture::Fleet;

#[path = "../fixture/mod.rs"]
mod fixture;
mod pages;

pub type Test = fixture::Test<Fleet>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|fleet| Box::pin($module::$name(fleet))) as Test)),*]
    };
}

fn all() -> Vec<(&'static str, Test)> {
    tests![
        pages::the_api_is_forwarded_by_path_prefix_to_the_service_that_owns_it,
        pages::a_civilian_signs_in_fills_a_cart_checks_out_with_a_card_and_sees_the_order,
        pages::a_declined_card_is_told_on_the_checkout_page_which_keeps_what_was_typed,
        pages::three_d_secure_approved_at_the_gateway_comes_back_and_places_the_order,
        pages::nobody_sees_another_users_order_page,
        pages::a_business_sees_its_part_and_confirms_and_ships_it,
        pages::the_order_page_is_kept_current_by_server_sent_events,
        pages::an_officer_gives_points_to_a_charity_and_a_refusal_keeps_the_form,
        pages::a_business_lists_changes_and_takes_an_offering_off_sale,
        pages::an_admin_registers_a_business_and_a_charity_and_sets_how_parts_reach_it,
        pages::a_shopper_reads_the_notifications_of_their_order_and_marks_one_read,
    ]
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    fixture::run_on_one_world(&args, &all(), Fleet::start(), |fleet| fleet)
}
