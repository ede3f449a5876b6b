//! Fill-by-fill comparison of an engine's run against simex's, with divergences classified.
//!
//! All engines get the same commands, so command `i` should produce the same fills (taker, maker,
//! price, quantity, in order) and the same accept/reject answer everywhere. The warm-up is compared
//! too: a divergence there would otherwise surface later, unexplained. Once two engines differ,
//! their books differ and later commands can differ as a consequence; so the first divergence is
//! what explains a run, and later ones are counted but not individually explained.
//!
//! Classes:
//! - **limit violation**: the engine filled an incoming order (new or replaced) at a price beyond
//!   its own limit, which price-time matching never does (matchcore issue #167). Counted on every
//!   command, since each one is a defect on its own whatever the book looked like.
//! - **fills differ**: different fills with no limit violation in this command.
//! - **reject differs**: one engine accepted a command the other rejected.

use crate::fills::{RunLog, Trade};
use crate::workload::{Op, Side, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    LimitViolation,
    FillsDiffer,
    RejectDiffers,
}

impl Class {
    pub fn describe(self) -> &'static str {
        match self {
            Class::LimitViolation => "filled beyond its limit price",
            Class::FillsDiffer => "different fills within limits",
            Class::RejectDiffers => "accepted by one engine, rejected by the other",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FirstDivergence {
    /// Whether it happened during the warm-up (which is compared too, but not timed).
    pub in_warmup: bool,
    /// Index within the warm-up or within the measured commands.
    pub command: usize,
    pub op: Op,
    pub class: Class,
    pub expected: Vec<Trade>,
    pub got: Vec<Trade>,
}

/// Counts over every command, warm-up included.
#[derive(Debug, Clone, Default)]
pub struct Divergence {
    pub commands: usize,
    /// Commands whose fills or rejection differ from the reference.
    pub commands_differing: usize,
    pub commands_with_limit_violation: usize,
    /// Fills beyond their taker's limit, and the quantity traded in them.
    pub limit_violating_fills: usize,
    pub limit_violating_qty: i64,
    pub reject_mismatches: usize,
    pub first: Option<FirstDivergence>,
    /// Differing commands before the first one with a limit violation: divergences the known
    /// defect cannot have caused.
    pub unexplained_before_first_violation: usize,
}

impl Divergence {
    pub fn identical(&self) -> bool {
        self.commands_differing == 0 && self.limit_violating_fills == 0
    }
}

/// Compares `got` with `expected`, warm-up then measured commands.
pub fn compare(workload: &Workload, expected: &RunLog, got: &RunLog) -> Divergence {
    let mut sides = vec![Side::Buy; workload.max_client_id as usize + 1];
    let mut result = Divergence::default();
    let mut violation_seen = false;
    let parts = [
        (true, &workload.warmup, &expected.warmup, &got.warmup),
        (false, &workload.measured, &expected.measured, &got.measured),
    ];
    for (in_warmup, ops, expected, got) in parts {
        assert_eq!(expected.len(), ops.len());
        assert_eq!(got.len(), ops.len());
        result.commands += ops.len();
        for (index, op) in ops.iter().enumerate() {
            let limit = match *op {
                Op::New { id, side, price, .. } => {
                    sides[id as usize] = side;
                    Some((side, price))
                }
                Op::Replace { id, price, .. } => Some((sides[id as usize], price)),
                Op::Cancel { .. } => None,
            };
            let fills = got.fills(index);
            let mut violations = 0;
            if let Some((side, limit)) = limit {
                for fill in fills.iter().filter(|f| !side.crosses(limit, f.price)) {
                    violations += 1;
                    result.limit_violating_qty += fill.qty;
                }
            }
            result.limit_violating_fills += violations;
            if violations > 0 {
                result.commands_with_limit_violation += 1;
            }
            let reject_differs = expected.rejected(index) != got.rejected(index);
            let fills_differ = expected.fills(index) != fills;
            if reject_differs {
                result.reject_mismatches += 1;
            }
            if reject_differs || fills_differ {
                result.commands_differing += 1;
                if !violation_seen && violations == 0 {
                    result.unexplained_before_first_violation += 1;
                }
                if result.first.is_none() {
                    result.first = Some(FirstDivergence {
                        in_warmup,
                        command: index,
                        op: *op,
                        class: if violations > 0 {
                            Class::LimitViolation
                        } else if fills_differ {
                            Class::FillsDiffer
                        } else {
                            Class::RejectDiffers
                        },
                        expected: expected.fills(index).to_vec(),
                        got: fills.to_vec(),
                    });
                }
            }
            violation_seen |= violations > 0;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fills::{FillLog, FillSink};
    use crate::workload::Tif;

    #[test]
    fn classifies_a_fill_through_the_limit() {
        let buy = Op::New { id: 2, account: 1, side: Side::Buy, tif: Tif::Gtc, price: 102, qty: 15 };
        let sell = Op::New { id: 1, account: 2, side: Side::Sell, tif: Tif::Gtc, price: 101, qty: 10 };
        let workload =
            Workload { name: "t".into(), accounts: 2, max_client_id: 2, warmup: vec![], measured: vec![sell, buy] };
        let fill = |price, qty| Trade { taker: 2, maker: 1, price, qty };
        let mut expected = FillLog::new();
        expected.end_command(false);
        expected.fill(fill(101, 10));
        expected.end_command(false);
        let mut got = FillLog::new();
        got.end_command(false);
        got.fill(fill(101, 10));
        got.fill(fill(103, 5));
        got.end_command(false);
        let expected = RunLog { warmup: FillLog::new(), measured: expected };
        let got = RunLog { warmup: FillLog::new(), measured: got };
        let d = compare(&workload, &expected, &got);
        assert_eq!(d.commands_differing, 1);
        assert_eq!((d.limit_violating_fills, d.limit_violating_qty), (1, 5));
        assert_eq!(d.unexplained_before_first_violation, 0);
        let first = d.first.unwrap();
        assert_eq!((first.command, first.class), (1, Class::LimitViolation));
        assert!(compare(&workload, &expected, &expected).identical());
    }
}
