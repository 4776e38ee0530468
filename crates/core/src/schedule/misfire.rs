//! [`Misfire`]: what a recurring job does about fire times it missed.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStructVariant, Serializer};
use serde::{Deserialize, Serialize};

/// What a recurring job does about fire times that passed while it could not fire (scheduler
/// down, backlog). One-shot jobs always fire, however late.
///
/// Serde form: `"fire_once"`, `"skip"`, `"fire_all"` (cap 100), or `{"fire_all": {"cap": N}}`
/// with `N >= 1`. The first three are also the [`FromStr`] forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Misfire {
    /// Fire once for all missed times, then continue with the next future time (the default).
    #[default]
    FireOnce,
    /// Drop missed times; continue with the next future time.
    Skip,
    /// Fire every missed time, oldest first, but at most `cap` of them; then continue.
    FireAll {
        /// Most missed fires to catch up on.
        cap: u32,
    },
}

impl Misfire {
    /// The `cap` of `"fire_all"` written without one.
    pub const DEFAULT_CAP: u32 = 100;

    fn from_name(name: &str) -> Option<Misfire> {
        match name {
            "fire_once" => Some(Misfire::FireOnce),
            "skip" => Some(Misfire::Skip),
            "fire_all" => Some(Misfire::FireAll {
                cap: Self::DEFAULT_CAP,
            }),
            _ => None,
        }
    }
}

const MISFIRE_EXPECTED: &str =
    "one of \"fire_once\", \"skip\", \"fire_all\" or {\"fire_all\": {\"cap\": N}}";

impl FromStr for Misfire {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Misfire::from_name(s)
            .ok_or_else(|| format!("unknown misfire policy `{s}`, expected {MISFIRE_EXPECTED}"))
    }
}

impl Serialize for Misfire {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Misfire::FireOnce => serializer.serialize_unit_variant("Misfire", 0, "fire_once"),
            Misfire::Skip => serializer.serialize_unit_variant("Misfire", 1, "skip"),
            Misfire::FireAll { cap } => {
                let mut variant =
                    serializer.serialize_struct_variant("Misfire", 2, "fire_all", 1)?;
                variant.serialize_field("cap", &cap)?;
                variant.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Misfire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FireAllOptions {
            #[serde(default = "default_cap")]
            cap: u32,
        }

        fn default_cap() -> u32 {
            Misfire::DEFAULT_CAP
        }

        struct MisfireVisitor;

        impl<'de> Visitor<'de> for MisfireVisitor {
            type Value = Misfire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MISFIRE_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Misfire, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Misfire, A::Error> {
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some("fire_all") {
                    return Err(de::Error::custom(format_args!(
                        "expected {MISFIRE_EXPECTED}"
                    )));
                }
                let options: FireAllOptions = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "expected {MISFIRE_EXPECTED}"
                    )));
                }
                if options.cap == 0 {
                    return Err(de::Error::custom("misfire `cap` must be at least 1"));
                }
                Ok(Misfire::FireAll { cap: options.cap })
            }
        }

        deserializer.deserialize_any(MisfireVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misfire_serde_forms() {
        let read = |s: &str| serde_json::from_str::<Misfire>(s);
        assert_eq!(Misfire::default(), Misfire::FireOnce);
        assert_eq!(read(r#""fire_once""#).unwrap(), Misfire::FireOnce);
        assert_eq!(read(r#""skip""#).unwrap(), Misfire::Skip);
        assert_eq!(
            read(r#""fire_all""#).unwrap(),
            Misfire::FireAll { cap: 100 }
        );
        assert_eq!(
            read(r#"{"fire_all": {"cap": 5}}"#).unwrap(),
            Misfire::FireAll { cap: 5 }
        );
        assert_eq!(
            read(r#"{"fire_all": {}}"#).unwrap(),
            Misfire::FireAll { cap: 100 }
        );
        assert!(read(r#"{"fire_all": {"cap": 0}}"#).is_err());
        assert!(read(r#"{"fire_all": {"cap": 5, "x": 1}}"#).is_err());
        assert!(read(r#"{"skip": {}}"#).is_err());
        assert!(read(r#"{"fire_all": {}, "skip": {}}"#).is_err());
        assert!(
            read(r#""later""#)
                .unwrap_err()
                .to_string()
                .contains("unknown misfire policy")
        );
        assert!(read("3").is_err());
        for m in [
            Misfire::FireOnce,
            Misfire::Skip,
            Misfire::FireAll { cap: 7 },
        ] {
            assert_eq!(read(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        }
        assert_eq!(
            serde_json::to_string(&Misfire::FireAll { cap: 7 }).unwrap(),
            r#"{"fire_all":{"cap":7}}"#
        );
    }
}
