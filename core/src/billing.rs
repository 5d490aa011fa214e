//! The per-second billing ledger of §3.3.3 ③ (decision 9).
//!
//! ```text
//! chargeable seconds = now − (charge start + freeTrialSec), never negative
//! money used         = chargeable seconds ÷ unitSec × unitPrice   (fractions kept)
//! money available    = (currentPoint + adjustment points) × pointPrice
//! the service ends when money available − money used < unitPrice
//! ```
//!
//! Time is kept in milliseconds and every comparison is done in exact integer
//! arithmetic (i128, both sides multiplied by unitSec × 1000), never in binary
//! floating point. The server calls [`Ledger::tick`] every second.
//!
//! Rounding, where the interface needs whole points (talkingPoint §4.3.5,
//! point §5.3.11): money used ÷ pointPrice is rounded **up** — a started point
//! is a used point. With a timely disconnect this never exceeds the user's
//! balance, since the balance is whole points and money used never passes
//! money available by a whole point.

use std::time::Duration;

use crate::clock::UnixMillis;
use crate::wire::site_service::ServiceCharge;

/// Something the server must act on, produced by [`Ledger::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    /// The user's points fell below autoChargeTriggerPoint: GET this URL.
    AutoChargeTriggered { url: String },
    /// Money left fell below one unitPrice: disconnect (reason 3 for calls).
    Exhausted,
}

/// The money state of one charged service (a call, or one viewer of a paid live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    unit_sec: u32,
    unit_price: u32,
    point_price: u32,
    start_points: u32,
    trigger_points: u32,
    trigger_url: Option<String>,
    /// When charging begins: the charge start plus freeTrialSec.
    paid_from: UnixMillis,
    adjustment_points: i64,
    auto_charge_points: u64,
    outside_usage_points: u64,
    trigger_armed: bool,
    exhausted: bool,
}

impl Ledger {
    /// A ledger for `charge`, charging from `charge_start` (+ freeTrialSec).
    pub fn new(charge: &ServiceCharge, charge_start: UnixMillis) -> Self {
        Self {
            unit_sec: charge.unit_sec,
            unit_price: charge.unit_price,
            point_price: charge.point_price,
            start_points: charge.current_point,
            trigger_points: charge.auto_charge_trigger_point,
            trigger_url: charge
                .auto_charge_trigger_url
                .clone()
                .filter(|u| !u.trim().is_empty()),
            paid_from: charge_start + Duration::from_secs(u64::from(charge.free_trial_sec)),
            adjustment_points: 0,
            auto_charge_points: 0,
            outside_usage_points: 0,
            trigger_armed: true,
            exhausted: false,
        }
    }

    /// unitSec, unitPrice or pointPrice of 0: nothing is charged, nothing ends.
    pub fn is_free(&self) -> bool {
        self.unit_sec == 0 || self.unit_price == 0 || self.point_price == 0
    }

    /// A partner's UpdateUserBalance or a real-time payment: + adds points
    /// (autoChargePoint), − takes them (outsideUsagePoint).
    pub fn adjust(&mut self, points: i64) {
        self.adjustment_points = self.adjustment_points.saturating_add(points);
        if points >= 0 {
            self.auto_charge_points = self
                .auto_charge_points
                .saturating_add(points.unsigned_abs());
        } else {
            self.outside_usage_points = self
                .outside_usage_points
                .saturating_add(points.unsigned_abs());
        }
    }

    /// Evaluates the balance at `now`. Each event is reported once: the
    /// trigger again only after the points rose back to the trigger level.
    pub fn tick(&mut self, now: UnixMillis) -> Vec<LedgerEvent> {
        if self.is_free() || self.exhausted {
            return Vec::new();
        }
        let mut events = Vec::new();
        let remaining = self.scaled_remaining_money(now);
        let scale = self.scale();
        let below_trigger =
            remaining < i128::from(self.trigger_points) * i128::from(self.point_price) * scale;
        if below_trigger && self.trigger_armed {
            self.trigger_armed = false;
            if let Some(url) = &self.trigger_url {
                events.push(LedgerEvent::AutoChargeTriggered { url: url.clone() });
            }
        } else if !below_trigger {
            self.trigger_armed = true;
        }
        if remaining < i128::from(self.unit_price) * scale {
            self.exhausted = true;
            events.push(LedgerEvent::Exhausted);
        }
        events
    }

    /// unitSec in milliseconds: the common denominator of every comparison.
    fn scale(&self) -> i128 {
        i128::from(self.unit_sec) * 1000
    }

    fn chargeable_ms(&self, now: UnixMillis) -> u64 {
        now.millis_since(self.paid_from)
    }

    /// Money used, × scale: chargeable ms × unitPrice.
    fn scaled_used_money(&self, now: UnixMillis) -> i128 {
        if self.is_free() {
            return 0;
        }
        i128::from(self.chargeable_ms(now)) * i128::from(self.unit_price)
    }

    fn available_points(&self) -> i128 {
        i128::from(self.start_points) + i128::from(self.adjustment_points)
    }

    /// (Money available − money used) × scale.
    fn scaled_remaining_money(&self, now: UnixMillis) -> i128 {
        self.available_points() * i128::from(self.point_price) * self.scale()
            - self.scaled_used_money(now)
    }

    /// Whole points used by `now`, rounded up (talkingPoint, point).
    pub fn used_points(&self, now: UnixMillis) -> u64 {
        if self.is_free() {
            return 0;
        }
        let divisor = i128::from(self.point_price) * self.scale();
        let used = self.scaled_used_money(now);
        u64::try_from((used + divisor - 1) / divisor).unwrap_or(u64::MAX)
    }

    /// The first billing-unit boundary after `now` (the free trial's end, then
    /// every unitSec): where the charge reaches a whole unit's price, a moment
    /// a crash-safe record of the charge is taken. `None` when free.
    pub fn next_unit_boundary(&self, now: UnixMillis) -> Option<UnixMillis> {
        if self.is_free() {
            return None;
        }
        if now < self.paid_from {
            return Some(self.paid_from);
        }
        let unit_ms = u64::from(self.unit_sec) * 1000;
        let units_done = now.millis_since(self.paid_from) / unit_ms;
        Some(self.paid_from + Duration::from_millis((units_done + 1) * unit_ms))
    }

    /// Chargeable seconds so far, rounded half up like talkingSec (chargeSec).
    pub fn charged_seconds(&self, now: UnixMillis) -> u64 {
        crate::clock::rounded_seconds(self.paid_from, now.max(self.paid_from))
    }

    /// How long until the service ends, for the "remaining paid time" display;
    /// `None` when free. Counts the rest of the free trial too.
    pub fn time_left(&self, now: UnixMillis) -> Option<Duration> {
        if self.is_free() {
            return None;
        }
        if self.exhausted {
            return Some(Duration::ZERO);
        }
        // The service ends at the first chargeable ms t with
        // available × scale − t × unitPrice < unitPrice × scale.
        let headroom = (self.available_points() * i128::from(self.point_price)
            - i128::from(self.unit_price))
            * self.scale();
        if headroom < 0 {
            return Some(Duration::ZERO);
        }
        let end_ms = headroom / i128::from(self.unit_price) + 1;
        let left_ms = end_ms - i128::from(self.chargeable_ms(now))
            + i128::from(self.paid_from.millis_since(now));
        Some(Duration::from_millis(
            u64::try_from(left_ms.max(0)).unwrap_or(u64::MAX),
        ))
    }

    pub fn start_points(&self) -> u32 {
        self.start_points
    }

    /// autoChargePoint: points added during the service.
    pub fn auto_charge_points(&self) -> u64 {
        self.auto_charge_points
    }

    /// outsideUsagePoint: points taken by the partner during the service.
    pub fn outside_usage_points(&self) -> u64 {
        self.outside_usage_points
    }

    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codes::ServiceChargeType;

    fn charge(
        unit_sec: u32,
        unit_price: u32,
        point_price: u32,
        current_point: u32,
    ) -> ServiceCharge {
        ServiceCharge {
            service_charge_type: ServiceChargeType::Call,
            unit_sec,
            unit_price,
            point_price,
            current_point,
            free_trial_sec: 0,
            auto_charge_trigger_point: 0,
            auto_charge_trigger_url: None,
        }
    }

    const T0: UnixMillis = UnixMillis(1_700_000_000_000);

    fn at(secs: i64) -> UnixMillis {
        UnixMillis(T0.0 + secs * 1000)
    }

    /// Ticks every second from the start; returns the second of exhaustion.
    fn run_until_exhausted(ledger: &mut Ledger, limit: i64) -> Option<i64> {
        (0..=limit).find(|s| ledger.tick(at(*s)).contains(&LedgerEvent::Exhausted))
    }

    #[test]
    fn unit_boundaries_follow_the_free_trial_then_every_unit() {
        let mut trial = charge(60, 100, 10, 50);
        trial.free_trial_sec = 10;
        let l = Ledger::new(&trial, T0);
        assert_eq!(l.next_unit_boundary(at(0)), Some(at(10)));
        assert_eq!(l.next_unit_boundary(at(10)), Some(at(70)));
        assert_eq!(l.next_unit_boundary(at(69)), Some(at(70)));
        assert_eq!(l.next_unit_boundary(at(70)), Some(at(130)));
        let free = Ledger::new(&charge(0, 100, 10, 50), T0);
        assert_eq!(free.next_unit_boundary(at(5)), None);
    }

    #[test]
    fn worked_example_of_the_formula() {
        // 100 yen per 60 s, 10 yen a point, 50 points = 500 yen.
        // Ends when 500 − t/60×100 < 100, i.e. t > 240 s.
        let mut l = Ledger::new(&charge(60, 100, 10, 50), T0);
        assert_eq!(l.time_left(at(0)), Some(Duration::from_millis(240_001)));
        assert_eq!(run_until_exhausted(&mut l, 1000), Some(241));
        assert_eq!(
            l.used_points(at(241)),
            41,
            "401.67 yen = 40.17 points, rounded up"
        );
        assert_eq!(l.time_left(at(241)), Some(Duration::ZERO));
        assert!(l.tick(at(242)).is_empty(), "exhaustion is reported once");
    }

    #[test]
    fn fractions_are_kept_between_units() {
        // 1 yen per 15 s: at 7.5 s, 0.5 yen is used, not 0 and not 1.
        let l = Ledger::new(&charge(15, 1, 1, 10), T0);
        assert_eq!(
            l.used_points(UnixMillis(T0.0 + 7_500)),
            1,
            "0.5 point rounds up"
        );
        assert_eq!(l.used_points(T0), 0);
        // Ends when 10 − t/15 < 1 ⇔ t > 135 s.
        let mut l = l;
        assert_eq!(run_until_exhausted(&mut l, 1000), Some(136));
    }

    #[test]
    fn zero_price_unit_or_point_price_is_free() {
        for c in [
            charge(0, 100, 10, 0),
            charge(60, 0, 10, 0),
            charge(60, 100, 0, 0),
        ] {
            let mut l = Ledger::new(&c, T0);
            assert!(l.is_free());
            assert_eq!(run_until_exhausted(&mut l, 10_000), None);
            assert_eq!(l.used_points(at(10_000)), 0);
            assert_eq!(l.time_left(at(5)), None);
        }
    }

    #[test]
    fn free_trial_delays_charging_but_not_the_balance_check() {
        let mut c = charge(60, 100, 10, 50);
        c.free_trial_sec = 30;
        let mut l = Ledger::new(&c, T0);
        assert_eq!(l.used_points(at(30)), 0);
        assert_eq!(l.charged_seconds(at(20)), 0);
        assert_eq!(l.charged_seconds(at(90)), 60);
        assert_eq!(l.time_left(at(0)), Some(Duration::from_millis(270_001)));
        assert_eq!(run_until_exhausted(&mut l, 1000), Some(271));
        // Without the points for one unit the service ends at once, trial or not.
        let mut poor = c.clone();
        poor.current_point = 9;
        let mut l = Ledger::new(&poor, T0);
        assert_eq!(run_until_exhausted(&mut l, 10), Some(0));
    }

    #[test]
    fn adjustments_move_the_end_and_are_reported_apart() {
        let mut l = Ledger::new(&charge(60, 100, 10, 50), T0);
        for s in 0..=200 {
            assert!(!l.tick(at(s)).contains(&LedgerEvent::Exhausted));
        }
        l.adjust(30); // +300 yen: now ends when 800 − t×100/60 < 100 ⇔ t > 420 s.
        l.adjust(-6); // −60 yen: t > 384 s.
        assert_eq!(l.auto_charge_points(), 30);
        assert_eq!(l.outside_usage_points(), 6);
        assert_eq!(
            (201..=1000).find(|s| l.tick(at(*s)).contains(&LedgerEvent::Exhausted)),
            Some(385)
        );
    }

    #[test]
    fn auto_charge_trigger_fires_on_crossing_and_rearms() {
        let mut c = charge(15, 1, 1, 100); // a point every 15 s
        c.auto_charge_trigger_point = 40;
        c.auto_charge_trigger_url = Some("https://partner.example/charge?u=1".into());
        let mut l = Ledger::new(&c, T0);
        let fired: Vec<i64> = (0..=1000).filter(|s| !l.tick(at(*s)).is_empty()).collect();
        // Below 40 points once more than 900 s are used.
        assert_eq!(fired, [901]);
        l.adjust(50); // back above: the trigger re-arms
        assert!(l.tick(at(1001)).is_empty());
        let again: Vec<i64> = (1002..=2000)
            .filter(|s| !l.tick(at(*s)).is_empty())
            .collect();
        assert_eq!(again, [1651]);
        assert_eq!(
            Ledger::new(&c, T0).tick(at(901)),
            [LedgerEvent::AutoChargeTriggered {
                url: "https://partner.example/charge?u=1".into()
            }]
        );
    }
}
