//! The ledger against a straightforward reference model of §3.3.3 ③
//! (decision 9), over random tariffs, tick times and adjustments.
//!
//! The model follows the spec's text literally in exact rationals; the ledger
//! does the same in scaled integers. They must agree on every event and on
//! every whole-point figure.

use std::time::Duration;

use nexmile_core::billing::{Ledger, LedgerEvent};
use nexmile_core::clock::UnixMillis;
use nexmile_core::wire::codes::ServiceChargeType;
use nexmile_core::wire::site_service::ServiceCharge;
use num_rational::Ratio;
use proptest::prelude::*;

type Q = Ratio<i128>;

const URL: &str = "https://partner.example/charge";

struct Model {
    charge: ServiceCharge,
    start_ms: i128,
    adjustment: i128,
    armed: bool,
    done: bool,
}

impl Model {
    fn free(&self) -> bool {
        let c = &self.charge;
        c.unit_sec == 0 || c.unit_price == 0 || c.point_price == 0
    }

    /// 課金対象秒数 = 現在時刻 − (課金開始時刻 + freeTrialSec), 0 if negative.
    fn chargeable_seconds(&self, now_ms: i128) -> Q {
        let seconds =
            Q::new(now_ms - self.start_ms, 1000) - Q::from(i128::from(self.charge.free_trial_sec));
        seconds.max(Q::from(0))
    }

    /// 現在課金額 = (課金対象秒数 / unitSec) × unitPrice, fractions kept.
    fn used_money(&self, now_ms: i128) -> Q {
        if self.free() {
            return Q::from(0);
        }
        self.chargeable_seconds(now_ms) / Q::from(i128::from(self.charge.unit_sec))
            * Q::from(i128::from(self.charge.unit_price))
    }

    /// 利用可能総額 = (currentPoint + 調整ポイント) × pointPrice.
    fn available_money(&self) -> Q {
        Q::from(
            (i128::from(self.charge.current_point) + self.adjustment)
                * i128::from(self.charge.point_price),
        )
    }

    fn tick(&mut self, now_ms: i128) -> Vec<LedgerEvent> {
        if self.free() || self.done {
            return vec![];
        }
        let mut events = vec![];
        let balance = self.available_money() - self.used_money(now_ms);
        let points = balance / Q::from(i128::from(self.charge.point_price));
        if points < Q::from(i128::from(self.charge.auto_charge_trigger_point)) {
            if self.armed {
                self.armed = false;
                events.push(LedgerEvent::AutoChargeTriggered { url: URL.into() });
            }
        } else {
            self.armed = true;
        }
        if balance < Q::from(i128::from(self.charge.unit_price)) {
            self.done = true;
            events.push(LedgerEvent::Exhausted);
        }
        events
    }

    fn used_points(&self, now_ms: i128) -> i128 {
        if self.free() {
            return 0;
        }
        (self.used_money(now_ms) / Q::from(i128::from(self.charge.point_price)))
            .ceil()
            .to_integer()
    }
}

fn charge() -> impl Strategy<Value = ServiceCharge> {
    (
        prop_oneof![1 => Just(0u32), 3 => prop::sample::select(vec![15u32, 60]), 3 => 15u32..=180],
        // Round prices make the exact boundaries (balance == unitPrice) frequent.
        prop_oneof![1 => Just(0u32), 3 => prop::sample::select(vec![1u32, 10, 60, 100]), 3 => 1u32..=9999],
        prop_oneof![1 => Just(0u32), 3 => prop::sample::select(vec![1u32, 10]), 3 => 1u32..=9999],
        prop_oneof![0u32..=30, 0u32..=20_000],
        prop_oneof![Just(0u32), 1u32..=120],
        // The trigger just under the balance, so the crossing happens in the run.
        prop_oneof![1u32..=8, 0u32..=20_000],
    )
        .prop_map(|(unit_sec, unit_price, point_price, current_point, free_trial_sec, trigger)| ServiceCharge {
            service_charge_type: ServiceChargeType::Call,
            unit_sec,
            unit_price,
            point_price,
            current_point,
            free_trial_sec,
            auto_charge_trigger_point: if trigger <= 8 { current_point.saturating_sub(trigger) } else { trigger },
            auto_charge_trigger_url: Some(URL.into()),
        })
}

/// Steps: how far the clock moves (the server ticks about every second,
/// sometimes late), and an optional UpdateUserBalance before the tick.
fn steps() -> impl Strategy<Value = Vec<(u64, Option<i64>)>> {
    let adjustment = || proptest::option::weighted(0.05, -3_000i64..=3_000);
    prop_oneof![
        // Ticks on whole seconds, as the server runs them: hits exact boundaries.
        proptest::collection::vec((Just(1_000u64), adjustment()), 1..600),
        // Late and early ticks: the fractions between.
        proptest::collection::vec((1u64..=2_500, adjustment()), 1..400),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn ledger_agrees_with_the_reference_model(charge in charge(), steps in steps()) {
        let start = UnixMillis(1_700_000_000_000);
        let mut ledger = Ledger::new(&charge, start);
        let mut model = Model { charge, start_ms: start.0.into(), adjustment: 0, armed: true, done: false };
        let mut now = start;
        for (advance, adjustment) in steps {
            now = now + Duration::from_millis(advance);
            if let Some(points) = adjustment {
                ledger.adjust(points);
                model.adjustment += i128::from(points);
            }
            prop_assert_eq!(ledger.tick(now), model.tick(now.0.into()), "at +{} ms", now.0 - start.0);
            prop_assert_eq!(i128::from(ledger.used_points(now)), model.used_points(now.0.into()));
            prop_assert_eq!(ledger.is_exhausted(), model.done);
        }
    }

    /// time_left names the first millisecond at which the model ends the service.
    #[test]
    fn time_left_is_exactly_when_the_money_runs_out(charge in charge(), elapsed_ms in 0u64..600_000) {
        let start = UnixMillis(1_700_000_000_000);
        let ledger = Ledger::new(&charge, start);
        let model = Model { charge, start_ms: start.0.into(), adjustment: 0, armed: true, done: false };
        let now = start + Duration::from_millis(elapsed_ms);
        let ends = |at_ms: i128| {
            !model.free() && model.available_money() - model.used_money(at_ms) < Q::from(i128::from(model.charge.unit_price))
        };
        match ledger.time_left(now) {
            None => prop_assert!(model.free()),
            Some(left) => {
                let end: i128 = i128::from(now.0) + i128::try_from(left.as_millis()).unwrap();
                prop_assert!(ends(end), "not ended at now + time_left");
                if !left.is_zero() {
                    prop_assert!(!ends(end - 1), "already ended before now + time_left");
                }
            }
        }
    }
}
