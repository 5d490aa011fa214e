//! Liberal readers for values partners write ("be liberal in what you accept").
//!
//! The spec's sample classes are C#; partners serialize IDs as numbers or
//! strings, booleans as `true`, `True` or `1`, numbers as `"120"`. Form and
//! query bodies carry everything as strings. These `deserialize_with` helpers
//! accept each of those forms; what we send is always the strict form.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// A scalar read without caring how it was typed.
enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, a boolean or a string")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

fn to_bool<E: de::Error>(s: Scalar) -> Result<bool, E> {
    match s {
        Scalar::Bool(b) => Ok(b),
        Scalar::Int(0) => Ok(false),
        Scalar::Int(1) => Ok(true),
        Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => Err(E::custom(format!("\"{t}\" is not a boolean"))),
        },
        _ => Err(E::custom("expected a boolean")),
    }
}

fn to_int<T: TryFrom<i128>, E: de::Error>(s: Scalar) -> Result<T, E> {
    let wide = match s {
        Scalar::Int(i) => i,
        // 120.0 from a serializer that writes every number as a double.
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => f as i128,
        Scalar::Text(t) => t
            .trim()
            .parse::<i128>()
            .map_err(|_| E::custom(format!("\"{t}\" is not a whole number")))?,
        _ => return Err(E::custom("expected a whole number")),
    };
    T::try_from(wide).map_err(|_| E::custom(format!("{wide} is out of range")))
}

fn to_float<E: de::Error>(s: Scalar) -> Result<f64, E> {
    match s {
        Scalar::Int(i) => Ok(i as f64),
        Scalar::Float(f) => Ok(f),
        Scalar::Text(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| E::custom(format!("\"{t}\" is not a number"))),
        Scalar::Bool(_) => Err(E::custom("expected a number")),
    }
}

fn to_text<E: de::Error>(s: Scalar) -> Result<String, E> {
    match s {
        Scalar::Text(t) => Ok(t),
        Scalar::Int(i) => Ok(i.to_string()),
        Scalar::Float(f) => Ok(f.to_string()),
        Scalar::Bool(b) => Ok(b.to_string()),
    }
}

pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    to_bool(scalar(d)?)
}

pub fn int<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    to_int(scalar(d)?)
}

pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    to_text(scalar(d)?)
}

/// `Option` forms: `null`, and the empty string of a form field, read as `None`.
struct OptionalVisitor;

impl<'de> Visitor<'de> for OptionalVisitor {
    type Value = Option<Scalar>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an optional scalar")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        scalar(d).map(Some)
    }
}

fn optional_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Scalar>, D::Error> {
    Ok(d.deserialize_option(OptionalVisitor)?
        .filter(|s| !matches!(s, Scalar::Text(t) if t.trim().is_empty())))
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    optional_scalar(d)?.map(to_bool).transpose()
}

pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    optional_scalar(d)?.map(to_text).transpose()
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    optional_scalar(d)?.map(to_float).transpose()
}

pub fn opt_int<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    optional_scalar(d)?.map(to_int).transpose()
}

/// A list whose unreadable entries are dropped, not the whole reply: one bad
/// decoration (§5.4) must not refuse a live.
pub fn list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let values =
        <Option<Vec<serde_json::Value>> as serde::Deserialize>::deserialize(d)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct T {
        #[serde(deserialize_with = "super::bool")]
        b: bool,
        #[serde(deserialize_with = "super::int")]
        n: u32,
        #[serde(deserialize_with = "super::text")]
        id: String,
        #[serde(default, deserialize_with = "super::opt_int")]
        o: Option<u8>,
        #[serde(default, deserialize_with = "super::opt_f64")]
        f: Option<f64>,
    }

    #[test]
    fn reads_each_form_partners_write() {
        let strict: T =
            serde_json::from_str(r#"{"b":true,"n":120,"id":"u1","o":3,"f":1.5}"#).unwrap();
        let loose: T =
            serde_json::from_str(r#"{"b":"True","n":"120","id":12345678,"o":"3","f":"1.5"}"#)
                .unwrap();
        assert_eq!(strict.n, loose.n);
        assert_eq!(loose.id, "12345678");
        assert!(loose.b);
        let doubles: T = serde_json::from_str(r#"{"b":1,"n":120.0,"id":"x","o":null}"#).unwrap();
        assert_eq!(doubles.n, 120);
        assert_eq!(doubles.o, None);
        let form: T = serde_urlencoded::from_str("b=false&n=7&id=abc&o=&f=2").unwrap();
        assert_eq!(
            form,
            T {
                b: false,
                n: 7,
                id: "abc".into(),
                o: None,
                f: Some(2.0)
            }
        );
    }

    #[test]
    fn refuses_what_cannot_be_meant() {
        for bad in [
            r#"{"b":"yes","n":1,"id":"x"}"#,
            r#"{"b":true,"n":-1,"id":"x"}"#,
            r#"{"b":true,"n":1.5,"id":"x"}"#,
            r#"{"b":true,"n":"12a","id":"x"}"#,
            r#"{"b":true,"n":1,"id":"x","o":300}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }
}
