//! The demo shop's fixed cast: its users (with their ids, roles and
//! emails), its businesses and their owners, its offerings, the charity and
//! the points everyone starts with.
//!
//! The local launcher seeds these through the services' APIs and prints a
//! token for each user; the webshop's demo sign-in offers the same users.
//! Both read them from here, so the two never disagree about who exists.

use std::time::Duration;

use http_service::{Claims, Role};
use serde::Serialize;
use uuid::Uuid;

/// How long the printed demo tokens stay valid.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// One demo user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    pub role: Role,
    pub id: Uuid,
    pub email: &'static str,
    /// The catalog id of the business a `business` user acts for.
    pub business_id: Option<Uuid>,
}

/// The demo users with a fixed identity. The business users are
/// [`DemoBusiness::owner`]s: their `business_id` is known once catalog has
/// the business.
pub const DEMO_USERS: [DemoUser; 4] = [
    DemoUser {
        role: Role::Civilian,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000001),
        email: "civilian@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Charity,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000002),
        email: "charity@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Officer,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000003),
        email: "officer@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Admin,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000005),
        email: "admin@demo.heyblue.local",
        business_id: None,
    },
];

/// A points award the demo starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoAward {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub reason: &'static str,
}

/// Points for the civilian (to redeem) and the officer (to donate).
pub const DEMO_AWARDS: [DemoAward; 2] = [
    DemoAward {
        award_id: Uuid::from_u128(0xa0000000_0000_4000_8000_000000000001),
        user_id: DEMO_USERS[0].id,
        points: 5_000,
        reason: "demo: welcome points for the civilian",
    },
    DemoAward {
        award_id: Uuid::from_u128(0xa0000000_0000_4000_8000_000000000002),
        user_id: DEMO_USERS[2].id,
        points: 2_000,
        reason: "demo: connection points for the officer",
    },
];

/// The charity account officers can donate to: the demo charity user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoCharity {
    pub charity_id: Uuid,
    pub name: &'static str,
}

pub const DEMO_CHARITY: DemoCharity = DemoCharity {
    charity_id: DEMO_USERS[1].id,
    name: "Blue Line Family Fund",
};

/// A partner business of the demo shop, and the user who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoBusiness {
    /// Unique among the demo businesses: how a kept one is found again.
    pub name: &'static str,
    pub contact_email: &'static str,
    pub owner_id: Uuid,
    pub owner_email: &'static str,
}

impl DemoBusiness {
    /// The business user acting for this business, registered under `business_id`.
    pub fn owner(&self, business_id: Uuid) -> DemoUser {
        DemoUser {
            role: Role::Business,
            id: self.owner_id,
            email: self.owner_email,
            business_id: Some(business_id),
        }
    }

    /// Its catalog id among `listed` `(name, id)` pairs, newest first as
    /// catalog lists them: the oldest of its name, which holds the
    /// offerings seeded first should two ever exist.
    pub fn registered_id<'a>(
        &self,
        listed: impl DoubleEndedIterator<Item = (&'a str, Uuid)>,
    ) -> Option<Uuid> {
        listed
            .rev()
            .find(|(name, _)| *name == self.name)
            .map(|(_, id)| id)
    }

    /// This business's demo offerings.
    pub fn offerings(&self) -> impl Iterator<Item = &'static DemoOffering> + '_ {
        DEMO_OFFERINGS
            .iter()
            .filter(move |offering| offering.business == self.name)
    }
}

const ROASTER: &str = "Northside Coffee Roasters";
const BIKE_SHOP: &str = "Spoke & Chain Bikes";

pub const DEMO_BUSINESSES: [DemoBusiness; 2] = [
    DemoBusiness {
        name: ROASTER,
        contact_email: "orders@northside-roasters.demo.heyblue.local",
        owner_id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000004),
        owner_email: "roaster@demo.heyblue.local",
    },
    DemoBusiness {
        name: BIKE_SHOP,
        contact_email: "shop@spoke-and-chain.demo.heyblue.local",
        owner_id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000006),
        owner_email: "bikes@demo.heyblue.local",
    },
];

/// What an offering is, as catalog names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Product,
    Voucher,
    Service,
}

/// One offering of the demo shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOffering {
    /// The [`DemoBusiness::name`] of the business selling it.
    pub business: &'static str,
    /// Unique within its business: how a kept one is found again.
    pub title: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    /// US cents.
    pub price_minor: i64,
    /// Points that pay one unit in full.
    pub points_price: i64,
    /// `None` is unlimited.
    pub stock: Option<i64>,
}

/// Prices are round dollar amounts; a point is worth about a cent, so the
/// civilian's 5,000 points pay for a bag of coffee or two, never the shop.
pub const DEMO_OFFERINGS: [DemoOffering; 12] = [
    DemoOffering {
        business: ROASTER,
        title: "House Blend, 340 g whole bean",
        description: "Our everyday medium-roast coffee: milk chocolate, hazelnut, a little orange.",
        kind: Kind::Product,
        price_minor: 1_600,
        points_price: 1_600,
        stock: None,
    },
    DemoOffering {
        business: ROASTER,
        title: "Ethiopia Yirgacheffe, 250 g whole bean",
        description: "A light single-origin coffee roast with jasmine and lemon notes.",
        kind: Kind::Product,
        price_minor: 1_950,
        points_price: 1_950,
        stock: None,
    },
    DemoOffering {
        business: ROASTER,
        title: "Decaf Colombia, 340 g ground",
        description: "Sugar-cane processed decaf coffee, ground for filter brewing.",
        kind: Kind::Product,
        price_minor: 1_500,
        points_price: 1_500,
        stock: None,
    },
    DemoOffering {
        business: ROASTER,
        title: "Ceramic pour-over dripper",
        description:
            "Brews one or two cups of filter coffee; hand-thrown, the last few of this glaze.",
        kind: Kind::Product,
        price_minor: 2_800,
        points_price: 2_800,
        stock: Some(3),
    },
    DemoOffering {
        business: ROASTER,
        title: "Coffee bar gift card, $25",
        description: "Good for drinks and beans at the roastery's coffee bar.",
        kind: Kind::Voucher,
        price_minor: 2_500,
        points_price: 2_500,
        stock: None,
    },
    DemoOffering {
        business: ROASTER,
        title: "Home barista class (2 hours)",
        description: "Espresso and milk basics for up to 8 people, Saturday mornings.",
        kind: Kind::Service,
        price_minor: 4_500,
        points_price: 4_500,
        stock: Some(8),
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "LED light set, front and rear",
        description: "USB-rechargeable, 400 lumen front, visible from 300 m.",
        kind: Kind::Product,
        price_minor: 3_400,
        points_price: 3_400,
        stock: None,
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "U-lock with frame mount",
        description: "Hardened steel shackle, two keys, fits most frames.",
        kind: Kind::Product,
        price_minor: 4_200,
        points_price: 4_200,
        stock: None,
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "Bottle cage",
        description: "Aluminium, holds standard bottles, bolts included.",
        kind: Kind::Product,
        price_minor: 900,
        points_price: 900,
        stock: None,
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "Basic tune-up",
        description: "Brakes and gears adjusted, chain cleaned, tyres checked; same day.",
        kind: Kind::Service,
        price_minor: 6_500,
        points_price: 6_500,
        stock: None,
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "Flat tyre repair",
        description: "Tube patched or replaced while you wait.",
        kind: Kind::Service,
        price_minor: 1_500,
        points_price: 1_500,
        stock: None,
    },
    DemoOffering {
        business: BIKE_SHOP,
        title: "Bike shop gift card, $50",
        description: "Good for parts, accessories and repairs.",
        kind: Kind::Voucher,
        price_minor: 5_000,
        points_price: 5_000,
        stock: None,
    },
];

impl DemoUser {
    /// The claims of this user's token, valid for `ttl`.
    pub fn claims(&self, ttl: Duration) -> Claims {
        let claims = Claims::new(self.id, self.role, ttl).with_email(self.email);
        match self.business_id {
            Some(business_id) => claims.with_business_id(business_id),
            None => claims,
        }
    }
}
