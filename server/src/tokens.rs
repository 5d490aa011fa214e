//! The tokens that name a call and a live. Both are UUIDs on the wire;
//! as types they cannot be mixed up, and a connection says which one it
//! is engaged in rather than leaving it to be guessed.

use std::fmt;

macro_rules! token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub(crate) struct $name(String);

        impl $name {
            /// A fresh random token.
            pub(crate) fn new() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(token: String) -> Self {
                Self(token)
            }
        }

        impl From<$name> for String {
            fn from(token: $name) -> Self {
                token.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token!(
    /// A call's callToken.
    CallToken
);
token!(
    /// A live's liveToken.
    LiveToken
);

/// What a connection is taken by: a call it is in or ringing for, or a
/// live it broadcasts or watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engagement {
    Call(CallToken),
    Live(LiveToken),
}
