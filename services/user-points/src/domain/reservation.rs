//! Reservations: points held for one order while it is checked out, and what
//! may happen to them afterwards.
//!
//! A reservation is `held` from the moment checkout asks for it. While its
//! checkout is unfinished (not bound), checkout may cancel it and it releases
//! itself once `expires_at` passes. `order_submitted`, or any of the order's
//! points commands, binds it to the order: from then on it never expires, and
//! only the order's commands spend, release or refund it.
//!
//! The race between expiry and `order_submitted` loses no points: binding a
//! reservation that was already released holds its points again. If the
//! balance no longer covers all of them, it holds what is available and
//! records the difference as `shortfall` (the order got a discount for points
//! that could not be collected), which the service logs and counts.
//!
//! Each step changes the reservation in place and returns the ledger moves
//! it makes, in order; the caller writes both in one transaction.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{EntryKind, Movement, Points, PointsError, MAX_MOVED_POINTS};

/// The longest a checkout may hold points before they release themselves.
pub const MAX_TTL_SECONDS: i64 = 24 * 3600;

/// Why a reservation request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error("ttl_seconds must be from 1 to {max}, not {ttl}")]
    TtlOutOfRange { ttl: i64, max: i64 },
}

/// Why one of the order's commands contradicts what the reservation went
/// through; retrying cannot help, an operator has to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandRefused {
    #[error("reservation {0} was released by its order and cannot be spent")]
    SpendAfterRelease(Uuid),
    #[error("reservation {0} was spent; giving points back takes a refund")]
    ReleaseAfterSpend(Uuid),
    #[error("reservation {0} was never spent, so nothing can be refunded")]
    RefundBeforeSpend(Uuid),
}

/// A reservation checkout asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    pub points: Points,
    pub ttl: Duration,
}

impl NewReservation {
    pub fn new(
        user_id: Uuid,
        order_id: Uuid,
        checkout_id: Uuid,
        points: i64,
        ttl_seconds: i64,
    ) -> Result<Self, ReservationError> {
        let points = Points::new(points, MAX_MOVED_POINTS)?;
        if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
            return Err(ReservationError::TtlOutOfRange {
                ttl: ttl_seconds,
                max: MAX_TTL_SECONDS,
            });
        }
        Ok(NewReservation {
            reservation_id: Uuid::now_v7(),
            user_id,
            order_id,
            checkout_id,
            points,
            ttl: Duration::seconds(ttl_seconds),
        })
    }

    /// The reservation as it starts: everything asked for is held.
    pub fn start(&self, now: OffsetDateTime) -> Reservation {
        let expires_at = now + self.ttl;
        // Whole microseconds, as PostgreSQL keeps it, so the first answer
        // and a repeated one show the same time.
        let expires_at = expires_at
            .replace_microsecond(expires_at.microsecond())
            .unwrap_or(expires_at);
        Reservation {
            reservation_id: self.reservation_id,
            user_id: self.user_id,
            order_id: self.order_id,
            checkout_id: self.checkout_id,
            points: self.points.get(),
            held: self.points.get(),
            spent: 0,
            refunded: 0,
            shortfall: 0,
            state: ReservationState::Held,
            bound_at: None,
            expires_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    Held,
    Released(ReleasedBy),
    Spent,
}

/// Who gave the held points back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasedBy {
    /// Checkout cancelled it (a failed checkout).
    Checkout,
    /// Its checkout did not finish in time.
    Expiry,
    /// The order asked (`points_release_requested`).
    Order,
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    /// What checkout asked to hold.
    pub points: i64,
    /// What is held for it now.
    pub held: i64,
    pub spent: i64,
    pub refunded: i64,
    /// Points the order counted on that could not be held again.
    pub shortfall: i64,
    pub state: ReservationState,
    /// When it was bound to its order; never expires from then on.
    pub bound_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

/// One movement of a reservation's points, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Available → reserved.
    Reserved(i64),
    /// Reserved → available.
    Released(i64),
    /// Reserved → spent.
    Spent(i64),
}

impl Move {
    pub fn kind(self) -> EntryKind {
        match self {
            Move::Reserved(_) => EntryKind::Reserved,
            Move::Released(_) => EntryKind::Released,
            Move::Spent(_) => EntryKind::Spent,
        }
    }

    pub fn points(self) -> i64 {
        match self {
            Move::Reserved(points) | Move::Released(points) | Move::Spent(points) => points,
        }
    }
}

/// What binding a reservation to its order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Bound before: nothing changed.
    AlreadyBound,
    /// Its points were still held; now they stay held.
    Bound,
    /// It had been released before its order was seen; `held` points are
    /// held again, `shortfall` of those asked for could not be.
    Reheld { held: i64, shortfall: i64 },
}

impl Reservation {
    pub fn is_bound(&self) -> bool {
        self.bound_at.is_some()
    }

    /// The ledger movement of `points` of `kind` for this reservation.
    pub fn movement(&self, kind: EntryKind, points: i64) -> Movement {
        Movement {
            user_id: self.user_id,
            kind,
            points,
            order_id: Some(self.order_id),
            reference: self.reservation_id.to_string(),
        }
    }

    /// Checkout gives up (`DELETE`). `Err` once bound: the order decides.
    pub fn cancel(&mut self) -> Result<Vec<Move>, Bound> {
        if self.is_bound() {
            return Err(Bound(self.reservation_id));
        }
        Ok(self.release_held(ReleasedBy::Checkout))
    }

    /// Releases it if it is unbound, still held and past `expires_at`.
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<Move> {
        if self.is_bound() || self.state != ReservationState::Held || self.expires_at > now {
            return Vec::new();
        }
        self.release_held(ReleasedBy::Expiry)
    }

    /// Whether binding it now holds its points again: it was given back by
    /// checkout or by expiry before its order was seen. Only then does
    /// [`Reservation::bind`] read the balance.
    pub fn binding_holds_again(&self) -> bool {
        !self.is_bound() && self.state != ReservationState::Held
    }

    /// Binds it to its order (`order_submitted`, or the order's first
    /// command); `available` is the user's balance, locked by the caller,
    /// and read only when [`Reservation::binding_holds_again`].
    pub fn bind(&mut self, available: i64, now: OffsetDateTime) -> (Binding, Vec<Move>) {
        if self.is_bound() {
            return (Binding::AlreadyBound, Vec::new());
        }
        self.bound_at = Some(now);
        match self.state {
            ReservationState::Held => (Binding::Bound, Vec::new()),
            // Only the order's commands release it for the order or spend
            // it, and they bind it first; seen unbound, it was given back
            // by checkout or by expiry.
            ReservationState::Released(_) | ReservationState::Spent => {
                let held = self.points.min(available.max(0));
                self.state = ReservationState::Held;
                self.held = held;
                self.shortfall = self.points - held;
                let moves = if held > 0 {
                    vec![Move::Reserved(held)]
                } else {
                    Vec::new()
                };
                (
                    Binding::Reheld {
                        held,
                        shortfall: self.shortfall,
                    },
                    moves,
                )
            }
        }
    }

    /// The order is paid: spend `requested` points of what is held. Held
    /// points beyond `requested` go back to available. Spending twice changes
    /// nothing the second time. It binds first; `available` is as for
    /// [`Reservation::bind`].
    pub fn spend(
        &mut self,
        requested: i64,
        available: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<Move>, CommandRefused> {
        match self.state {
            ReservationState::Spent => return Ok(Vec::new()),
            ReservationState::Released(ReleasedBy::Order) => {
                return Err(CommandRefused::SpendAfterRelease(self.reservation_id))
            }
            ReservationState::Held | ReservationState::Released(_) => {}
        }
        // The spend may overtake `order_submitted` (another topic): it binds.
        let (_, mut moves) = self.bind(available, now);
        let spent = requested.clamp(0, self.held);
        let rest = self.held - spent;
        if spent > 0 {
            moves.push(Move::Spent(spent));
        }
        if rest > 0 {
            moves.push(Move::Released(rest));
        }
        self.shortfall = (requested - self.held).max(0);
        self.state = ReservationState::Spent;
        self.spent = spent;
        self.held = 0;
        Ok(moves)
    }

    /// The order will not be paid: give the held points back. Releasing
    /// twice changes nothing the second time.
    pub fn release(&mut self, now: OffsetDateTime) -> Result<Vec<Move>, CommandRefused> {
        if self.bound_at.is_none() {
            // From now on a late `order_submitted` must not hold them again.
            self.bound_at = Some(now);
        }
        match self.state {
            ReservationState::Spent => Err(CommandRefused::ReleaseAfterSpend(self.reservation_id)),
            ReservationState::Released(_) => Ok(Vec::new()),
            ReservationState::Held => Ok(self.release_held(ReleasedBy::Order)),
        }
    }

    /// Gives back up to `requested` spent points; never more in all than
    /// were spent. Returns how many.
    pub fn refund(&mut self, requested: i64) -> Result<i64, CommandRefused> {
        if self.state != ReservationState::Spent {
            return Err(CommandRefused::RefundBeforeSpend(self.reservation_id));
        }
        let refunded = requested.clamp(0, self.spent - self.refunded);
        self.refunded += refunded;
        Ok(refunded)
    }

    fn release_held(&mut self, by: ReleasedBy) -> Vec<Move> {
        if self.state != ReservationState::Held {
            return Vec::new();
        }
        let held = self.held;
        self.state = ReservationState::Released(by);
        self.held = 0;
        if held > 0 {
            vec![Move::Released(held)]
        } else {
            Vec::new()
        }
    }
}

/// Checkout may no longer cancel a reservation bound to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reservation {0} is bound to its order")]
pub struct Bound(pub Uuid);

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(points: i64) -> Reservation {
        NewReservation::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), points, 60)
            .expect("valid")
            .start(OffsetDateTime::UNIX_EPOCH)
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(seconds)
    }

    #[test]
    fn a_request_needs_positive_points_and_a_bounded_ttl() {
        let id = Uuid::new_v4();
        assert!(matches!(
            NewReservation::new(id, id, id, 0, 60),
            Err(ReservationError::Points(PointsError::TooFew(0)))
        ));
        assert!(matches!(
            NewReservation::new(id, id, id, 10, 0),
            Err(ReservationError::TtlOutOfRange { .. })
        ));
        assert!(matches!(
            NewReservation::new(id, id, id, 10, MAX_TTL_SECONDS + 1),
            Err(ReservationError::TtlOutOfRange { .. })
        ));
    }

    #[test]
    fn an_unbound_reservation_expires_once_and_a_bound_one_never() {
        let mut unbound = reservation(30);
        assert_eq!(unbound.expire(at(59)), vec![]);
        assert_eq!(unbound.expire(at(60)), vec![Move::Released(30)]);
        assert_eq!(
            unbound.state,
            ReservationState::Released(ReleasedBy::Expiry)
        );
        assert_eq!(unbound.expire(at(61)), vec![]);

        let mut bound = reservation(30);
        assert_eq!(bound.bind(0, at(1)), (Binding::Bound, vec![]));
        assert_eq!(bound.expire(at(10_000)), vec![]);
        assert_eq!(bound.cancel(), Err(Bound(bound.reservation_id)));
    }

    #[test]
    fn a_late_binding_holds_again_what_the_balance_still_covers() {
        let mut full = reservation(30);
        assert!(!full.binding_holds_again(), "still held");
        full.expire(at(60));
        assert!(full.binding_holds_again());
        assert_eq!(
            full.bind(100, at(61)),
            (
                Binding::Reheld {
                    held: 30,
                    shortfall: 0
                },
                vec![Move::Reserved(30)]
            )
        );
        assert!(!full.binding_holds_again(), "bound");
        assert_eq!(full.bind(100, at(62)).0, Binding::AlreadyBound);

        let mut short = reservation(30);
        short.expire(at(60));
        let (binding, moves) = short.bind(12, at(61));
        assert_eq!(
            binding,
            Binding::Reheld {
                held: 12,
                shortfall: 18
            }
        );
        assert_eq!(moves, vec![Move::Reserved(12)]);
        assert_eq!(short.spend(30, 0, at(62)), Ok(vec![Move::Spent(12)]));
        assert_eq!((short.spent, short.shortfall), (12, 18));
    }

    #[test]
    fn a_spend_before_the_binding_binds_and_spends_once() {
        let mut r = reservation(30);
        r.expire(at(60));
        assert_eq!(
            r.spend(30, 100, at(61)),
            Ok(vec![Move::Reserved(30), Move::Spent(30)])
        );
        assert_eq!(r.spend(30, 100, at(62)), Ok(vec![]));
        assert_eq!(r.bind(100, at(63)).0, Binding::AlreadyBound);
    }

    #[test]
    fn releases_and_refunds_follow_the_order_and_never_exceed_what_was_spent() {
        let mut released = reservation(30);
        assert_eq!(released.release(at(1)), Ok(vec![Move::Released(30)]));
        assert_eq!(released.release(at(2)), Ok(vec![]));
        assert_eq!(
            released.spend(30, 100, at(3)),
            Err(CommandRefused::SpendAfterRelease(released.reservation_id))
        );
        assert_eq!(
            released.refund(5),
            Err(CommandRefused::RefundBeforeSpend(released.reservation_id))
        );

        let mut spent = reservation(30);
        assert_eq!(
            spent.spend(20, 0, at(1)),
            Ok(vec![Move::Spent(20), Move::Released(10)])
        );
        assert_eq!(
            spent.release(at(2)),
            Err(CommandRefused::ReleaseAfterSpend(spent.reservation_id))
        );
        assert_eq!(spent.refund(15), Ok(15));
        assert_eq!(spent.refund(15), Ok(5));
        assert_eq!(spent.refund(1), Ok(0));
    }
}
