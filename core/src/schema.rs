//! JSON Schema for the types whose serde form is hand-written (numbers for
//! codes and masks, strings for tokens and dates), so the signalling
//! protocol's schema (`signal::schema`) says what is really on the wire.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::datetime::WireDateTime;
use crate::device::DeviceToken;
use crate::secret::Secret;
use crate::wire::codes::{CallOption, OsType, TerminateReason};

macro_rules! schema_as {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

schema_as!(DeviceToken, "DeviceToken", {
    "type": "string", "format": "uuid",
    "description": "One per installation (§3.1.2, decision 15)."
});
schema_as!(Secret, "Secret", {
    "type": "string", "description": "A password: sent, never printed."
});
schema_as!(WireDateTime, "WireDateTime", {
    "type": "string", "pattern": "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    "description": "yyyy/MM/dd HH:mm:ss, Japan time."
});
schema_as!(OsType, "OsType", {
    "type": "integer", "enum": [1, 2, 3], "description": "§3.1.2 osType: 1 Android, 2 iOS, 3 browser."
});
schema_as!(TerminateReason, "TerminateReason", {
    "type": "integer", "enum": [1, 2, 3, 4, -1, -2, -4, -5, -6, -8, -9],
    "description": "§4.3.5 通話切断理由."
});
schema_as!(CallOption, "CallOption", {
    "type": "integer", "minimum": 0,
    "description": "§4.3.1 callOption mask: 1 face filter, 2 mosaic, 4 wallpaper, 8 recording allowed."
});
