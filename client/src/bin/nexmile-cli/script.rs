//! What the command line asks the headless app to do by itself, in place of
//! the person at a window: answer after a while, hang up, start a live, write
//! comments. A state machine driven by the engine's events and a clock the
//! caller passes in; it answers with the user actions that fall due.

use std::collections::VecDeque;
use std::time::Duration;

use nexmile_client::app::UserAction;
use nexmile_client::events::EngineEvent;
use nexmile_core::signal::{LiveNotice, LiveRole};
use tokio::time::Instant;

/// The command line's choices; `None` leaves a step to nobody.
#[derive(Debug, Clone, Default)]
pub struct ScriptPlan {
    /// An incoming call is answered this long after it rings.
    pub answer_after: Option<Duration>,
    /// Incoming calls are declined at once.
    pub decline: bool,
    /// A ringing outgoing call is given up this long after it started ringing.
    pub cancel_after: Option<Duration>,
    /// A call is hung up this long after it connected.
    pub hangup_after: Option<Duration>,
    /// The video test ends this long after its media started.
    pub test_for: Option<Duration>,
    /// The broadcaster starts this long after the live is prepared.
    pub start_after: Option<Duration>,
    /// The live is ended (broadcaster) or left (viewer) this long after
    /// going on air (or starting to watch).
    pub live_for: Option<Duration>,
    /// Comments, gifts, payments, removals and the paid switch, one a second
    /// from going on air, in this order.
    pub live_steps: Vec<UserAction>,
}

/// The timers a run can have, at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Answer,
    Decline,
    Cancel,
    Hangup,
    EndTest,
    StartLive,
    LeaveLive,
    LiveStep,
}

/// Time between two scripted live steps.
const STEP_EVERY: Duration = Duration::from_secs(1);

pub struct Script {
    plan: ScriptPlan,
    timers: Vec<(Timer, Instant)>,
    steps: VecDeque<UserAction>,
}

impl Script {
    pub fn new(plan: ScriptPlan) -> Self {
        Self {
            plan,
            timers: Vec::new(),
            steps: VecDeque::new(),
        }
    }

    fn set(&mut self, timer: Timer, after: Option<Duration>, now: Instant) {
        self.clear(&[timer]);
        if let Some(after) = after {
            self.timers.push((timer, now + after));
        }
    }

    fn clear(&mut self, timers: &[Timer]) {
        self.timers.retain(|(timer, _)| !timers.contains(timer));
    }

    /// Schedules what `event` starts, and forgets what it ends.
    pub fn on_event(&mut self, event: &EngineEvent, now: Instant) {
        match event {
            EngineEvent::CallIncoming(_) if self.plan.decline => {
                self.set(Timer::Decline, Some(Duration::ZERO), now);
            }
            EngineEvent::CallIncoming(_) => self.set(Timer::Answer, self.plan.answer_after, now),
            EngineEvent::CallRinging { .. } => self.set(Timer::Cancel, self.plan.cancel_after, now),
            EngineEvent::CallConnected { .. } => {
                self.clear(&[Timer::Cancel]);
                self.set(Timer::Hangup, self.plan.hangup_after, now);
            }
            EngineEvent::CallEnded { .. } | EngineEvent::CallCancelled { .. } => {
                self.clear(&[Timer::Answer, Timer::Decline, Timer::Cancel, Timer::Hangup]);
            }
            EngineEvent::VideoTestStarted => self.set(Timer::EndTest, self.plan.test_for, now),
            EngineEvent::LivePrepared(LiveNotice::Prepared(details))
                if details.role == LiveRole::Broadcaster =>
            {
                self.set(Timer::StartLive, self.plan.start_after, now);
            }
            EngineEvent::LiveOnAir { .. } => {
                self.set(Timer::LeaveLive, self.plan.live_for, now);
                self.steps = self.plan.live_steps.iter().cloned().collect();
                let first = (!self.steps.is_empty()).then_some(Duration::ZERO);
                self.set(Timer::LiveStep, first, now);
            }
            EngineEvent::LiveEnded(_) => {
                self.steps.clear();
                self.clear(&[Timer::StartLive, Timer::LeaveLive, Timer::LiveStep]);
            }
            _ => {}
        }
    }

    /// When the next action falls due, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|(_, at)| *at).min()
    }

    /// The actions due at `now`, oldest first.
    pub fn due(&mut self, now: Instant) -> Vec<UserAction> {
        let mut actions = Vec::new();
        while let Some(next) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(_, (_, at))| *at)
            .map(|(i, _)| i)
        {
            let (timer, at) = self.timers.swap_remove(next);
            let action = match timer {
                Timer::Answer => Some(UserAction::Answer),
                Timer::Decline => Some(UserAction::Decline),
                Timer::Cancel | Timer::Hangup | Timer::EndTest | Timer::LeaveLive => {
                    Some(UserAction::Hangup)
                }
                Timer::StartLive => Some(UserAction::StartLive),
                Timer::LiveStep => {
                    let step = self.steps.pop_front();
                    if !self.steps.is_empty() {
                        self.timers.push((Timer::LiveStep, at + STEP_EVERY));
                    }
                    step
                }
            };
            actions.extend(action);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use nexmile_core::signal::CallDetails;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn details() -> CallDetails {
        serde_json::from_value(serde_json::json!({
            "call_token": "ct", "peer_name": "花子", "video": true, "options": 0,
            "ring_timeout_sec": 30
        }))
        .expect("call details")
    }

    #[test]
    fn a_callee_answers_after_the_pause_and_hangs_up_after_the_talk() {
        let t0 = Instant::now();
        let mut script = Script::new(ScriptPlan {
            answer_after: Some(ms(500)),
            hangup_after: Some(ms(3000)),
            ..ScriptPlan::default()
        });
        script.on_event(&EngineEvent::CallIncoming(details()), t0);
        assert_eq!(script.deadline(), Some(t0 + ms(500)));
        assert!(script.due(t0 + ms(499)).is_empty());
        assert_eq!(script.due(t0 + ms(500)), vec![UserAction::Answer]);
        script.on_event(
            &EngineEvent::CallConnected {
                call_token: "ct".into(),
            },
            t0 + ms(800),
        );
        assert_eq!(script.due(t0 + ms(3799)), vec![]);
        assert_eq!(script.due(t0 + ms(3800)), vec![UserAction::Hangup]);
        assert_eq!(script.deadline(), None);
    }

    #[test]
    fn a_caller_that_connects_in_time_does_not_cancel() {
        let t0 = Instant::now();
        let mut script = Script::new(ScriptPlan {
            cancel_after: Some(ms(2000)),
            ..ScriptPlan::default()
        });
        let token = || "ct".to_owned();
        script.on_event(
            &EngineEvent::CallRinging {
                call_token: token(),
            },
            t0,
        );
        script.on_event(
            &EngineEvent::CallConnected {
                call_token: token(),
            },
            t0 + ms(1000),
        );
        assert_eq!(script.deadline(), None);
        // Unanswered, the ring is given up.
        script.on_event(
            &EngineEvent::CallRinging {
                call_token: token(),
            },
            t0,
        );
        assert_eq!(script.due(t0 + ms(2000)), vec![UserAction::Hangup]);
    }

    #[test]
    fn a_declining_callee_declines_at_once_and_forgets_an_ended_call() {
        let t0 = Instant::now();
        let mut script = Script::new(ScriptPlan {
            decline: true,
            ..ScriptPlan::default()
        });
        script.on_event(&EngineEvent::CallIncoming(details()), t0);
        assert_eq!(script.due(t0), vec![UserAction::Decline]);
        let mut answering = Script::new(ScriptPlan {
            answer_after: Some(ms(500)),
            ..ScriptPlan::default()
        });
        answering.on_event(&EngineEvent::CallIncoming(details()), t0);
        answering.on_event(
            &EngineEvent::CallCancelled {
                call_token: "ct".into(),
            },
            t0 + ms(100),
        );
        assert!(answering.due(t0 + ms(600)).is_empty());
    }

    #[test]
    fn live_steps_go_one_a_second_from_on_air_and_the_live_ends_on_time() {
        let t0 = Instant::now();
        let mut script = Script::new(ScriptPlan {
            live_for: Some(ms(2500)),
            live_steps: vec![
                UserAction::Comment("こんにちは".into()),
                UserAction::SendItem {
                    category: "2".into(),
                    item_no: "1".into(),
                },
                UserAction::PaidSwitch(120),
            ],
            ..ScriptPlan::default()
        });
        script.on_event(
            &EngineEvent::LiveOnAir {
                live_token: "lt".into(),
            },
            t0,
        );
        assert_eq!(
            script.due(t0),
            vec![UserAction::Comment("こんにちは".into())]
        );
        assert_eq!(script.deadline(), Some(t0 + ms(1000)));
        // A late clock still gets every step, each once.
        assert_eq!(
            script.due(t0 + ms(2600)),
            vec![
                UserAction::SendItem {
                    category: "2".into(),
                    item_no: "1".into()
                },
                UserAction::PaidSwitch(120),
                UserAction::Hangup,
            ]
        );
        assert_eq!(script.deadline(), None);
    }

    #[test]
    fn the_video_test_ends_after_its_time() {
        let t0 = Instant::now();
        let mut script = Script::new(ScriptPlan {
            test_for: Some(ms(5000)),
            ..ScriptPlan::default()
        });
        script.on_event(&EngineEvent::VideoTestStarted, t0);
        assert_eq!(script.due(t0 + ms(5000)), vec![UserAction::Hangup]);
    }
}
