//! The pricing rule of DESIGN §3, exactly: `points_price` points pay one
//! unit in full; the points budget is spent walking the cart in order, each
//! line taking at most what pays it in full; a line's discount is its price
//! times the share of its points that were applied, rounded down.
//!
//! Products are taken in 128-bit integers: `unit_price × quantity × applied`
//! reaches 10⁸ × 99 × 10¹⁰ ≈ 10²⁰ at the largest allowed prices, past `i64`.

use uuid::Uuid;

use super::{Points, Quantity, UnitPrice};

/// One cart line with what catalog says it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    pub offering_id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub quantity: Quantity,
    pub unit_price_minor: UnitPrice,
    /// Points that pay one unit in full.
    pub points_price: UnitPrice,
}

/// A line with its share of the points and what is left to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub line: CartLine,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub amount_due_minor: i64,
}

/// What the cart costs with the points applied; totals are sums over lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub lines: Vec<PricedLine>,
    pub subtotal_minor: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
}

/// A total that does not fit the wire's 64-bit integers: only a cart far
/// beyond any real one (about 10⁹ lines at the largest prices) gets here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cart's total does not fit in 64 bits")]
pub struct PricingError;

/// Prices `lines` (in cart order) with at most `budget` points.
pub fn price(lines: &[CartLine], budget: Points) -> Result<Quote, PricingError> {
    let mut budget_left = i128::from(budget.get());
    let mut priced = Vec::with_capacity(lines.len());
    let (mut subtotal, mut points, mut discount, mut total) = (0i128, 0i128, 0i128, 0i128);
    for line in lines {
        let quantity = i128::from(line.quantity.get());
        let gross = i128::from(line.unit_price_minor.get()) * quantity;
        // Never 0: a points price and a quantity are at least 1.
        let max = i128::from(line.points_price.get()) * quantity;
        let applied = budget_left.min(max);
        // Both factors are non-negative, so division truncates toward zero,
        // which is the floor.
        let line_discount = gross * applied / max;
        let due = gross - line_discount;
        budget_left -= applied;
        subtotal += gross;
        points += applied;
        discount += line_discount;
        total += due;
        priced.push(PricedLine {
            line: line.clone(),
            points_applied: narrow(applied)?,
            discount_minor: narrow(line_discount)?,
            amount_due_minor: narrow(due)?,
        });
    }
    Ok(Quote {
        lines: priced,
        subtotal_minor: narrow(subtotal)?,
        points_applied: narrow(points)?,
        discount_minor: narrow(discount)?,
        total_minor: narrow(total)?,
    })
}

fn narrow(value: i128) -> Result<i64, PricingError> {
    i64::try_from(value).map_err(|_| PricingError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_PRICE;

    fn line(quantity: u32, unit_price: i64, points_price: i64) -> CartLine {
        CartLine {
            offering_id: Uuid::new_v4(),
            business_id: Uuid::new_v4(),
            title: "Mug".to_owned(),
            quantity: Quantity::new(quantity).expect("quantity"),
            unit_price_minor: UnitPrice::new("price_minor", unit_price).expect("price"),
            points_price: UnitPrice::new("points_price", points_price).expect("points price"),
        }
    }

    /// `(points_applied, discount_minor, amount_due_minor)` of each line.
    fn shares(quote: &Quote) -> Vec<(i64, i64, i64)> {
        quote
            .lines
            .iter()
            .map(|l| (l.points_applied, l.discount_minor, l.amount_due_minor))
            .collect()
    }

    #[test]
    fn the_pricing_rule_holds_line_by_line() {
        struct Case {
            name: &'static str,
            lines: Vec<CartLine>,
            budget: i64,
            expected: Vec<(i64, i64, i64)>,
        }
        let cases = [
            Case {
                name: "no points: everything is paid in money",
                lines: vec![line(2, 1_200, 120)],
                budget: 0,
                expected: vec![(0, 0, 2_400)],
            },
            Case {
                name: "enough points pay a line in full",
                lines: vec![line(2, 1_200, 120)],
                budget: 240,
                expected: vec![(240, 2_400, 0)],
            },
            Case {
                name: "a line takes no more points than pay it in full",
                lines: vec![line(1, 500, 50)],
                budget: 1_000,
                expected: vec![(50, 500, 0)],
            },
            Case {
                name: "a partial share is rounded down (1000 × 1/3 = 333.3)",
                lines: vec![line(1, 1_000, 3)],
                budget: 1,
                expected: vec![(1, 333, 667)],
            },
            Case {
                name: "rounding down, never up (1000 × 2/3 = 666.6)",
                lines: vec![line(1, 1_000, 3)],
                budget: 2,
                expected: vec![(2, 666, 334)],
            },
            Case {
                name: "the budget is spent in cart order",
                lines: vec![line(1, 1_000, 100), line(3, 700, 70), line(1, 50, 5)],
                budget: 250,
                expected: vec![(100, 1_000, 0), (150, 1_500, 600), (0, 0, 50)],
            },
            Case {
                name: "odd quantities round on the whole line",
                lines: vec![line(7, 333, 10)],
                budget: 33,
                // 333 × 7 = 2331; 2331 × 33 / 70 = 1098.9
                expected: vec![(33, 1_098, 1_233)],
            },
            Case {
                name: "the largest prices and quantity, paid in full",
                lines: vec![line(99, MAX_PRICE, MAX_PRICE)],
                budget: 99 * MAX_PRICE,
                expected: vec![(99 * MAX_PRICE, 99 * MAX_PRICE, 0)],
            },
            Case {
                name: "the largest prices and quantity, one point short",
                lines: vec![line(99, MAX_PRICE, MAX_PRICE)],
                budget: 99 * MAX_PRICE - 1,
                // 9.9e9 × (9.9e9 − 1) / 9.9e9 = 9.9e9 − 1 exactly.
                expected: vec![(99 * MAX_PRICE - 1, 99 * MAX_PRICE - 1, 1)],
            },
            Case {
                name: "the largest price against a points price of one",
                lines: vec![line(99, MAX_PRICE, 1), line(99, MAX_PRICE, MAX_PRICE)],
                budget: 50,
                // 9.9e9 × 50 / 99 = 5 000 000 000 exactly; nothing left.
                expected: vec![(50, 5_000_000_000, 4_900_000_000), (0, 0, 99 * MAX_PRICE)],
            },
            Case {
                name: "a cheap line with the most points per unit",
                lines: vec![line(99, 1, MAX_PRICE)],
                budget: 99 * MAX_PRICE / 2 + 1,
                // 99 × (4.95e9 + 1) / 9.9e9 = 49.50000001 → 49.
                expected: vec![(99 * MAX_PRICE / 2 + 1, 49, 50)],
            },
        ];
        for case in cases {
            let quote = price(&case.lines, Points::new(case.budget).expect("points"))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(shares(&quote), case.expected, "{}", case.name);
            let sum = |f: fn(&(i64, i64, i64)) -> i64| case.expected.iter().map(f).sum::<i64>();
            assert_eq!(quote.points_applied, sum(|s| s.0), "{}", case.name);
            assert_eq!(quote.discount_minor, sum(|s| s.1), "{}", case.name);
            assert_eq!(quote.total_minor, sum(|s| s.2), "{}", case.name);
            assert_eq!(
                quote.subtotal_minor,
                quote.discount_minor + quote.total_minor,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_large_cart_at_the_largest_prices_does_not_overflow() {
        let lines: Vec<_> = (0..1_000).map(|_| line(99, MAX_PRICE, MAX_PRICE)).collect();
        let quote = price(&lines, Points::new(i64::MAX).expect("points")).expect("fits");
        assert_eq!(quote.subtotal_minor, 1_000 * 99 * MAX_PRICE);
        assert_eq!(quote.total_minor, 0);
        assert_eq!(quote.points_applied, 1_000 * 99 * MAX_PRICE);
    }

    #[test]
    fn an_empty_cart_costs_nothing() {
        let quote = price(&[], Points::new(10).expect("points")).expect("fits");
        assert_eq!(quote.total_minor, 0);
        assert_eq!(quote.points_applied, 0);
    }
}
