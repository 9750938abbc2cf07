//! Generated code of `proto/claimlint/v1/claimlint.proto`: prost messages, the tonic service,
//! and the canonical proto3 JSON mapping (pbjson).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/claimlint.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/claimlint.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/claimlint_descriptor.bin"));

/// A proto3 JSON number field: a JSON number, or a string holding one (int64 is written as a
/// string). Stands in for `pbjson::private::NumberDeserialize` in the generated code (see
/// `build.rs`): the same inputs are accepted, but a JSON number goes straight to `T`'s own
/// conversion instead of first failing, with a formatted error, as a string.
// The derives of pbjson's helper: pbjson-build uses it as the key of a map of int keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NumberDeserialize<T>(pub(crate) T);

impl<'de, T> Deserialize<'de> for NumberDeserialize<T>
where
    T: FromStr + Deserialize<'de>,
    <T as FromStr>::Err: std::error::Error,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberVisitor(PhantomData))
    }
}

struct NumberVisitor<T>(PhantomData<T>);

impl<'de, T> Visitor<'de> for NumberVisitor<T>
where
    T: FromStr + Deserialize<'de>,
    <T as FromStr>::Err: std::error::Error,
{
    type Value = NumberDeserialize<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a number, or a string holding a number")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        text.parse().map(NumberDeserialize).map_err(E::custom)
    }

    // serde's own conversions (range checks, integer → float) decide, as they do for pbjson.
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        T::deserialize(IntoDeserializer::<E>::into_deserializer(number)).map(NumberDeserialize)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
        T::deserialize(IntoDeserializer::<E>::into_deserializer(number)).map(NumberDeserialize)
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
        T::deserialize(IntoDeserializer::<E>::into_deserializer(number)).map(NumberDeserialize)
    }
}

#[cfg(test)]
mod tests {
    use super::NumberDeserialize;

    /// Ours and pbjson's read one JSON value into `T` alike: the same value (compared as
    /// `Debug` text, so -0.0 and 0.0 differ), or both an error.
    fn same_as_pbjson<T>(json: &str) -> Result<T, String>
    where
        T: std::str::FromStr + for<'de> serde::Deserialize<'de> + std::fmt::Debug,
        <T as std::str::FromStr>::Err: std::error::Error,
    {
        let ours = serde_json::from_str::<NumberDeserialize<T>>(json).map(|n| n.0);
        let pbjson =
            serde_json::from_str::<pbjson::private::NumberDeserialize<T>>(json).map(|n| n.0);
        match (ours, pbjson) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{json}");
                Ok(ours)
            }
            (Err(ours), Err(_)) => Err(ours.to_string()),
            (ours, theirs) => panic!("{json}: ours {ours:?}, pbjson {theirs:?}"),
        }
    }

    #[test]
    fn reads_numbers_as_pbjson_does() {
        // One row per input; `Some` is the value both accept, `None` both reject.
        let u32_rows: &[(&str, Option<u32>)] = &[
            ("0", Some(0)),
            ("15", Some(15)),
            ("\"15\"", Some(15)),
            ("4294967295", Some(u32::MAX)),
            ("4294967296", None),
            ("18446744073709551616", None),
            ("\"4294967296\"", None),
            ("\"\\u0031\"", Some(1)),
            ("-0", None),
            ("-1", None),
            ("\"-1\"", None),
            ("1.0", None),
            ("1e2", None),
            ("\"\"", None),
            ("\" 1\"", None),
            ("\"a lot\"", None),
            ("true", None),
            ("null", None),
            ("[1]", None),
            ("{\"a\":1}", None),
        ];
        check_rows(u32_rows);
        let i64_rows: &[(&str, Option<i64>)] = &[
            ("4500", Some(4500)),
            ("\"4500\"", Some(4500)),
            ("-7", Some(-7)),
            ("\"-7\"", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("\"9223372036854775808\"", None),
            ("9223372036854775808", None),
            ("45.5", None),
            ("-0", None),
            ("\"\"", None),
            ("null", None),
            ("[1]", None),
            ("{\"a\":1}", None),
        ];
        check_rows(i64_rows);
        let f64_rows: &[(&str, Option<f64>)] = &[
            ("70", Some(70.0)),
            ("-3", Some(-3.0)),
            ("12.5", Some(12.5)),
            ("\"12.5\"", Some(12.5)),
            ("1e3", Some(1000.0)),
            ("\"Infinity\"", Some(f64::INFINITY)),
            ("-0", Some(-0.0)),
            ("18446744073709551616", Some(18446744073709551616.0)),
            ("\"twelve\"", None),
            ("\"\"", None),
            ("false", None),
            ("null", None),
            ("[1]", None),
            ("{\"a\":1}", None),
        ];
        check_rows(f64_rows);
    }

    /// Each row's input read as `T` by both helpers gives the row's value (compared as `Debug`
    /// text, so -0.0 and 0.0 differ) or is refused by both.
    fn check_rows<T>(rows: &[(&str, Option<T>)])
    where
        T: std::str::FromStr + for<'de> serde::Deserialize<'de> + std::fmt::Debug,
        <T as std::str::FromStr>::Err: std::error::Error,
    {
        for (json, expected) in rows {
            let read = same_as_pbjson::<T>(json).ok();
            assert_eq!(
                format!("{read:?}"),
                format!("{expected:?}"),
                "{} {json}",
                std::any::type_name::<T>()
            );
        }
    }

    #[test]
    fn says_what_is_wrong_with_a_number() {
        let error = same_as_pbjson::<u32>("-1").unwrap_err();
        assert!(error.contains("-1") && error.contains("u32"), "{error}");
        let error = same_as_pbjson::<u32>("\"a lot\"").unwrap_err();
        assert!(error.contains("invalid digit"), "{error}");
    }
}
