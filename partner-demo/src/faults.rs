//! Faults a test switches on to make this site misbehave like a broken partner.

use std::sync::Mutex;
use std::time::Duration;

use nexmile_core::wire::codes::CallServiceType;
use serde::{Deserialize, Serialize};

/// How long a `timeout` fault holds a request: far beyond the server's 8 s.
pub(crate) const HELD_REQUEST: Duration = Duration::from_secs(30);

/// The endpoints a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultEndpoint {
    #[serde(rename = "auth")]
    Auth,
    #[serde(rename = "CallService")]
    CallService,
    #[serde(rename = "payment")]
    Payment,
    #[serde(rename = "liveService")]
    LiveService,
}

impl FaultEndpoint {
    pub(crate) fn of_path(path: &str) -> Option<Self> {
        match path {
            "/auth" => Some(Self::Auth),
            "/CallService" => Some(Self::CallService),
            "/payment" => Some(Self::Payment),
            "/liveService" => Some(Self::LiveService),
            _ => None,
        }
    }
}

/// What the site does instead of answering properly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Holds the request without answering for 30 s.
    Timeout,
    /// HTTP 500.
    Http500,
    /// HTTP 200 with `<html>not a reply`.
    Garbage,
    /// `result=-1&message=<message>`, or `result=-1` without a message.
    Refuse,
}

/// One fault, as `POST /demo/faults` takes it:
/// `{"endpoint":"CallService","callServiceTp":1,"fault":"refuse","message":"…","times":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub endpoint: FaultEndpoint,
    /// Only CallService requests of this type; `None`: every request to the endpoint.
    #[serde(
        rename = "callServiceTp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub call_service_type: Option<CallServiceType>,
    #[serde(rename = "fault")]
    pub kind: FaultKind,
    /// The refusal text of [`FaultKind::Refuse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many requests it hits; `None`: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl Fault {
    /// Every request to `endpoint`, until cleared.
    pub fn new(endpoint: FaultEndpoint, kind: FaultKind) -> Self {
        Self {
            endpoint,
            call_service_type: None,
            kind,
            message: None,
            times: None,
        }
    }

    pub fn for_call_service_type(mut self, call_service_type: CallServiceType) -> Self {
        self.call_service_type = Some(call_service_type);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    fn hits(&self, endpoint: FaultEndpoint, call_service_type: Option<u8>) -> bool {
        self.endpoint == endpoint
            && self
                .call_service_type
                .is_none_or(|wanted| Some(wanted as u8) == call_service_type)
    }
}

/// The faults in force; the newest matching one wins.
#[derive(Default)]
pub(crate) struct FaultBook(Mutex<Vec<Fault>>);

impl FaultBook {
    pub fn set(&self, fault: Fault) {
        if fault.times != Some(0) {
            self.lock().insert(0, fault);
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// The fault for this request, counting it against the fault's `times`.
    pub fn take(&self, endpoint: FaultEndpoint, call_service_type: Option<u8>) -> Option<Fault> {
        let mut faults = self.lock();
        let index = faults
            .iter()
            .position(|f| f.hits(endpoint, call_service_type))?;
        let fault = faults[index].clone();
        match &mut faults[index].times {
            Some(1) => {
                faults.remove(index);
            }
            Some(left) => *left -= 1,
            None => {}
        }
        Some(fault)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        // A panic elsewhere cannot leave the list half-changed: every change is one call.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_json() {
        let f: Fault = serde_json::from_str(
            r#"{"endpoint":"CallService","callServiceTp":1,"fault":"http500","times":2}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::new(FaultEndpoint::CallService, FaultKind::Http500)
                .for_call_service_type(CallServiceType::Prepare)
                .times(2)
        );
        let f: Fault = serde_json::from_str(r#"{"endpoint":"auth","fault":"refuse"}"#).unwrap();
        assert_eq!(f, Fault::new(FaultEndpoint::Auth, FaultKind::Refuse));
    }

    #[test]
    fn counts_down_and_matches_the_call_type() {
        let book = FaultBook::default();
        book.set(
            Fault::new(FaultEndpoint::CallService, FaultKind::Garbage)
                .for_call_service_type(CallServiceType::Prepare)
                .times(2),
        );
        assert!(book.take(FaultEndpoint::CallService, Some(3)).is_none());
        assert!(book.take(FaultEndpoint::Auth, None).is_none());
        assert!(book.take(FaultEndpoint::CallService, Some(1)).is_some());
        assert!(book.take(FaultEndpoint::CallService, Some(1)).is_some());
        assert!(book.take(FaultEndpoint::CallService, Some(1)).is_none());
        book.set(Fault::new(FaultEndpoint::Auth, FaultKind::Timeout));
        book.set(Fault::new(FaultEndpoint::Auth, FaultKind::Refuse));
        assert_eq!(
            book.take(FaultEndpoint::Auth, None).map(|f| f.kind),
            Some(FaultKind::Refuse),
            "the newest wins"
        );
        book.clear();
        assert!(book.list().is_empty());
    }
}
