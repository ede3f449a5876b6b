//! Trailing stops of one (symbol, side, unit): which fire at a price, without rescanning them all
//! when the price moves.
//!
//! # The idea
//! A sell trailing stop's stop is `best - offset(best, trail)`, where `best` is the highest price
//! printed since the order was accepted (a buy mirrors this with the lowest price). A new print `p`
//! above an order's best raises that best to exactly `p`. So after any print, every order whose
//! best was below `p` has the *same* best, `p`: orders are kept in **groups by best price**, and a
//! print merges every group below it into one group at `p`. Within a group the stop is monotonic
//! in the trail (a wider trail, a lower stop), so each group is a set ordered by trail, and one
//! ordered set (`tightest`) holds each group's highest stop.
//!
//! Buys are stored mirrored (prices negated), so one code path serves both sides: in the stored
//! space the best only rises and an order fires when the (mirrored) print is at or below its stop.
//!
//! # Cost
//! - A print that moves no best: `O(log g)` (one look at the lowest group), `g` groups.
//! - A print that raises bests: the groups below it merge, smaller sets into the largest; an order
//!   moves only into a set at least twice the size of the one it leaves, so it moves at most
//!   `log n` times in its life: `O(log² n)` amortised per order, never a scan of all orders.
//! - Finding the orders that fire: `O(log g + fired)`.
//! - Cancel: `O(log n)` (each order knows its group).
//!
//! The stop never loosens: a group's best only rises (in stored space) and the stop is
//! non-decreasing in the best for both units (`ceil(best * bps / 10000)` grows by at most one tick
//! per tick of best when `bps < 10000`).

use crate::types::{OrderId, BASIS_POINTS_PER_UNIT};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

type GroupId = u64;

#[derive(Debug, Default, Clone)]
struct Group {
    /// The best price of every member, in stored (mirrored for buys) space.
    best_stored: i64,
    /// (trail, order id): the tightest trail first.
    members: BTreeSet<(i64, OrderId)>,
    /// The stop of the first member, as filed in `tightest`.
    tightest_stop: i64,
}

/// The trailing stops of one symbol, one side, one trail unit.
#[derive(Debug, Default, Clone)]
pub(crate) struct TrailBook {
    /// -1 for buys (stored mirrored), +1 for sells.
    sign: i64,
    /// Trails are basis points of the best price (else ticks).
    in_bps: bool,
    groups_by_best: BTreeMap<i64, GroupId>,
    groups: FxHashMap<GroupId, Group>,
    /// (stop, group best) of every group's tightest member: the highest stop fires first.
    tightest: BTreeSet<(i64, i64)>,
    group_of: FxHashMap<OrderId, GroupId>,
    next_group_id: GroupId,
}

impl TrailBook {
    pub(crate) fn new(sell: bool, in_bps: bool) -> TrailBook {
        TrailBook { sign: if sell { 1 } else { -1 }, in_bps, ..TrailBook::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.group_of.len()
    }

    /// The stop price, in stored space, of a member with `trail` in a group whose best is `best_stored`.
    fn stop_stored(&self, best_stored: i64, trail: i64) -> i64 {
        // Saturating: monotonic still, and a trail beyond the price range cannot overflow.
        best_stored.saturating_sub(offset_ticks(best_stored.abs(), trail, self.in_bps))
    }

    /// The real stop price of an order (`None` if it is not here).
    pub(crate) fn stop_ticks(&self, order_id: OrderId) -> Option<i64> {
        let group = &self.groups[self.group_of.get(&order_id)?];
        let trail = group.members.iter().find(|(_, id)| *id == order_id)?.0;
        Some(self.sign * self.stop_stored(group.best_stored, trail))
    }

    /// Files an order whose best price so far is `best_ticks`.
    pub(crate) fn insert(&mut self, order_id: OrderId, best_ticks: i64, trail: i64) {
        let best_stored = self.sign * best_ticks;
        let group_id = match self.groups_by_best.get(&best_stored) {
            Some(&group_id) => group_id,
            None => {
                self.next_group_id += 1;
                let group_id = self.next_group_id;
                self.groups_by_best.insert(best_stored, group_id);
                self.groups.insert(group_id, Group { best_stored, ..Group::default() });
                group_id
            }
        };
        let group = self.groups.get_mut(&group_id).expect("group exists");
        group.members.insert((trail, order_id));
        self.group_of.insert(order_id, group_id);
        self.refile(group_id);
    }

    /// Removes an order; `false` if it was not here.
    pub(crate) fn remove(&mut self, order_id: OrderId, trail: i64) -> bool {
        let Some(group_id) = self.group_of.remove(&order_id) else {
            return false;
        };
        let group = self.groups.get_mut(&group_id).expect("group exists");
        let removed = group.members.remove(&(trail, order_id));
        assert!(removed, "trailing order filed with another trail");
        self.refile(group_id);
        true
    }

    /// Puts a group's tightest stop back into `tightest` after its members changed; drops the group
    /// when it is empty.
    fn refile(&mut self, group_id: GroupId) {
        let group = &self.groups[&group_id];
        let (best_stored, old_stop, first) = (group.best_stored, group.tightest_stop, group.members.first().copied());
        self.tightest.remove(&(old_stop, best_stored));
        match first {
            None => {
                self.groups.remove(&group_id);
                self.groups_by_best.remove(&best_stored);
            }
            Some((trail, _)) => {
                let stop = self.stop_stored(best_stored, trail);
                self.groups.get_mut(&group_id).expect("group exists").tightest_stop = stop;
                self.tightest.insert((stop, best_stored));
            }
        }
    }

    /// A trade printed at `price_ticks`: every order whose best is behind it now has it as its best.
    pub(crate) fn observe(&mut self, price_ticks: i64) {
        let price_stored = self.sign * price_ticks;
        if self.groups_by_best.first_key_value().is_none_or(|(&lowest, _)| lowest >= price_stored) {
            return;
        }
        let upper = self.groups_by_best.split_off(&price_stored);
        let lower = std::mem::replace(&mut self.groups_by_best, upper);
        // Merge into the largest group: every order that moves lands in a set at least twice the size.
        let mut merged: Vec<GroupId> = lower.values().copied().collect();
        if let Some(&existing) = self.groups_by_best.get(&price_stored) {
            merged.push(existing);
        }
        let base = *merged.iter().max_by_key(|id| (self.groups[id].members.len(), **id)).expect("a group merges");
        for &group_id in &merged {
            let group = &self.groups[&group_id];
            self.tightest.remove(&(group.tightest_stop, group.best_stored));
        }
        for &group_id in &merged {
            if group_id == base {
                continue;
            }
            let group = self.groups.remove(&group_id).expect("group exists");
            for &(_, order_id) in &group.members {
                self.group_of.insert(order_id, base);
            }
            self.groups.get_mut(&base).expect("base exists").members.extend(group.members);
        }
        self.groups_by_best.insert(price_stored, base);
        let group = self.groups.get_mut(&base).expect("base exists");
        group.best_stored = price_stored;
        // `refile` removes the (stale) entry it finds under the new best; there is none.
        group.tightest_stop = i64::MIN;
        self.refile(base);
    }

    /// Appends the orders whose stop a print at `price_ticks` reaches. Changes nothing.
    pub(crate) fn collect(&self, price_ticks: i64, fired: &mut Vec<OrderId>) {
        let price_stored = self.sign * price_ticks;
        for &(stop, best_stored) in self.tightest.iter().rev() {
            if stop < price_stored {
                break;
            }
            let group = &self.groups[&self.groups_by_best[&best_stored]];
            for &(trail, order_id) in &group.members {
                if self.stop_stored(best_stored, trail) < price_stored {
                    break;
                }
                fired.push(order_id);
            }
        }
    }

    /// Every order with its best price, by best (in stored order), then trail, then id.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(OrderId, i64, i64)) {
        for group_id in self.groups_by_best.values() {
            let group = &self.groups[group_id];
            for &(trail, order_id) in &group.members {
                visit(order_id, self.sign * group.best_stored, trail);
            }
        }
    }

    /// The book's internal consistency.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let mut count = 0usize;
        for (&best_stored, group_id) in &self.groups_by_best {
            let group = self.groups.get(group_id).ok_or("trailing group missing")?;
            if group.best_stored != best_stored || group.members.is_empty() {
                return Err(format!("trailing group at {best_stored} is misfiled or empty"));
            }
            let (trail, _) = *group.members.first().expect("not empty");
            if !self.tightest.contains(&(self.stop_stored(best_stored, trail), best_stored)) {
                return Err(format!("trailing group at {best_stored} has no tightest stop"));
            }
            for (_, order_id) in &group.members {
                if self.group_of.get(order_id) != Some(group_id) {
                    return Err(format!("trailing order {order_id} is filed in the wrong group"));
                }
            }
            count += group.members.len();
        }
        if count != self.group_of.len() || self.groups.len() != self.groups_by_best.len() {
            return Err("trailing groups and their indexes disagree".into());
        }
        if self.tightest.len() != self.groups.len() {
            return Err("trailing stops filed for groups that are gone".into());
        }
        Ok(())
    }
}

/// How far a trailing stop sits from its best price: `trail` ticks, or `trail` basis points of the
/// best price rounded up (so at least one tick).
pub(crate) fn offset_ticks(best_ticks: i64, trail: i64, in_bps: bool) -> i64 {
    if !in_bps {
        return trail;
    }
    let product = i128::from(best_ticks) * i128::from(trail);
    let divisor = i128::from(BASIS_POINTS_PER_UNIT);
    i64::try_from((product + divisor - 1) / divisor).expect("a share of a price fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(book: &TrailBook, price_ticks: i64) -> Vec<OrderId> {
        let mut fired = Vec::new();
        book.collect(price_ticks, &mut fired);
        fired.sort_unstable();
        fired
    }

    #[test]
    fn a_sell_trail_follows_the_high_and_fires_on_the_pullback() {
        let mut book = TrailBook::new(true, false);
        book.insert(1, 100, 5);
        book.insert(2, 100, 10);
        assert_eq!(book.stop_ticks(1), Some(95));
        book.observe(110);
        assert_eq!((book.stop_ticks(1), book.stop_ticks(2)), (Some(105), Some(100)));
        book.observe(104);
        assert_eq!(book.stop_ticks(1), Some(105), "a fall never loosens the stop");
        assert_eq!(fired(&book, 106), Vec::<OrderId>::new());
        assert_eq!(fired(&book, 105), vec![1]);
        assert_eq!(fired(&book, 99), vec![1, 2]);
        book.verify().unwrap();
    }

    #[test]
    fn a_buy_trail_is_the_mirror() {
        let mut book = TrailBook::new(false, true);
        book.insert(7, 10_000, 100); // 1%: stop 10_100
        assert_eq!(book.stop_ticks(7), Some(10_100));
        book.observe(9_000);
        assert_eq!(book.stop_ticks(7), Some(9_090));
        book.observe(9_500);
        assert_eq!(book.stop_ticks(7), Some(9_090));
        assert_eq!(fired(&book, 9_089), Vec::<OrderId>::new());
        assert_eq!(fired(&book, 9_090), vec![7]);
        book.verify().unwrap();
    }

    #[test]
    fn groups_merge_and_orders_stay_findable() {
        let mut book = TrailBook::new(true, false);
        for (order_id, best) in [(1, 100), (2, 101), (3, 102), (4, 150)] {
            book.insert(order_id, best, 3);
        }
        book.observe(120);
        book.verify().unwrap();
        assert_eq!(book.groups.len(), 2);
        assert_eq!(book.stop_ticks(2), Some(117));
        assert_eq!(book.stop_ticks(4), Some(147));
        assert!(book.remove(2, 3));
        assert!(!book.remove(2, 3));
        book.verify().unwrap();
        assert_eq!(fired(&book, 117), vec![1, 3, 4]);
    }
}
