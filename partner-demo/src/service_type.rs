//! The request code of a CallService or liveService body, read before (or
//! without) decoding the whole request.

use nexmile_core::codec::decode_json_body;
use nexmile_core::wire::codes::{CallServiceType, LiveServiceType};

/// Which service a JSON request body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    Call,
    Live,
}

impl ServiceKind {
    fn field(self) -> &'static str {
        match self {
            Self::Call => "callServiceTp",
            Self::Live => "liveServiceTp",
        }
    }

    /// The `callServiceTp` / `liveServiceTp` of `body`, if it has one.
    pub fn code_of(self, body: &[u8]) -> Option<u8> {
        let json: serde_json::Value = decode_json_body(body).ok()?;
        json.get(self.field())?
            .as_u64()
            .and_then(|code| u8::try_from(code).ok())
    }

    /// Whether the server reads this request's `result` (応答コード有効), or
    /// only its HTTP status; unknown codes count as verdicts.
    pub fn reply_decides(self, body: &[u8]) -> bool {
        let Some(code) = self.code_of(body) else {
            return true;
        };
        match self {
            Self::Call => CallServiceType::ALL
                .into_iter()
                .find(|t| *t as u8 == code)
                .is_none_or(|t| t.handling().reply_decides),
            Self::Live => LiveServiceType::ALL
                .into_iter()
                .find(|t| *t as u8 == code)
                .is_none_or(|t| t.handling().reply_decides),
        }
    }
}
