//! The two sides of a call, named by the call's actors, its signalling and
//! its billing alike; a leaf, so that the signalling protocol does not
//! depend on the call's state machine.

/// Who, of a call's two users, something is about.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Caller,
    Callee,
}
