//! Identifiers and small value types of a job: [`JobId`], [`FireId`], [`Priority`], [`Shard`].
//!
//! Every type here can only hold a valid value: ids are checked when built or deserialized.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Why a string is not a valid [`JobId`] or [`FireId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// The id is the empty string.
    #[error("id is empty")]
    Empty,
    /// The id is longer than [`JobId::MAX_LEN`] bytes.
    #[error("id is {len} bytes long, over the limit of {max} bytes", max = JobId::MAX_LEN)]
    TooLong {
        /// Length of the rejected id in bytes.
        len: usize,
    },
    /// The id contains a character that ids may not contain.
    #[error("id contains {what} at byte {at}")]
    ForbiddenChar {
        /// Which kind of character: `a control character`, `whitespace` or `` `/` ``.
        what: &'static str,
        /// Byte offset of the character.
        at: usize,
    },
    /// A fire id that is not `<job id>@<epoch ms>`.
    #[error("fire id is not of the form `<job id>@<epoch ms>`")]
    FireIdForm,
}

/// The id of a job: 1 to 256 bytes of UTF-8 without ASCII control characters, whitespace or `/`.
///
/// Serialized as a plain string; deserializing validates like [`JobId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Longest accepted id, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates a client-supplied id.
    pub fn parse(id: &str) -> Result<JobId, InvalidId> {
        if id.is_empty() {
            return Err(InvalidId::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(InvalidId::TooLong { len: id.len() });
        }
        if let Some((at, what)) = forbidden_char(id) {
            return Err(InvalidId::ForbiddenChar { what, at });
        }
        Ok(JobId(id.to_owned()))
    }

    /// The deterministic id of a request that came without id or idempotency key:
    /// `"{topic}-{partition}-{offset}"`, so a redelivered record names the same job.
    ///
    /// Kafka topic names (`[a-zA-Z0-9._-]`, at most 249 bytes) always give a valid id. For
    /// anything else, forbidden characters become `_`, and a result over [`JobId::MAX_LEN`]
    /// keeps a prefix of the topic followed by `~` and the topic's xxh3 hash in hex; both
    /// transformations are deterministic.
    pub fn derived(topic: &str, partition: i32, offset: i64) -> JobId {
        let topic: String = topic
            .chars()
            .map(|c| if is_forbidden(c) { '_' } else { c })
            .collect();
        let suffix = format!("-{partition}-{offset}");
        let mut id = format!("{topic}{suffix}");
        if id.len() > Self::MAX_LEN {
            let hash = format!("~{:016x}", xxh3_64(topic.as_bytes()));
            let mut keep = (Self::MAX_LEN - hash.len() - suffix.len()).min(topic.len());
            while !topic.is_char_boundary(keep) {
                keep -= 1;
            }
            let prefix = &topic[..keep];
            id = format!("{prefix}{hash}{suffix}");
        }
        JobId(id)
    }

    /// A new random, time-ordered id (UUID v7), for REST requests without id or idempotency key.
    pub fn new_v7() -> JobId {
        JobId(uuid::Uuid::now_v7().to_string())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for JobId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobId::parse(s)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        JobId::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn is_forbidden(c: char) -> bool {
    c.is_ascii_control() || c.is_whitespace() || c == '/'
}

fn forbidden_char(id: &str) -> Option<(usize, &'static str)> {
    id.char_indices().find_map(|(at, c)| {
        if c.is_ascii_control() {
            Some((at, "a control character"))
        } else if c.is_whitespace() {
            Some((at, "whitespace"))
        } else if c == '/' {
            Some((at, "`/`"))
        } else {
            None
        }
    })
}

/// The id of one fire of a job: `"{job_id}@{due_epoch_ms}"`.
///
/// Deterministic: the same job due at the same scheduled instant always has the same fire id,
/// so a redelivered or re-claimed fire can be recognised downstream (`sked-fire-id` header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FireId(String);

impl FireId {
    /// The fire id of `job` due at `due` (its due time, jitter included: every fire of a job
    /// has its own due time, and the same one each time it is planned).
    pub fn new(job: &JobId, due: DateTime<Utc>) -> FireId {
        FireId(format!("{job}@{}", due.timestamp_millis()))
    }

    /// Parses a fire id read back from a header or store; checks both parts.
    pub fn parse(s: &str) -> Result<FireId, InvalidId> {
        let (job, ms) = s.rsplit_once('@').ok_or(InvalidId::FireIdForm)?;
        JobId::parse(job)?;
        ms.parse::<i64>().map_err(|_| InvalidId::FireIdForm)?;
        Ok(FireId(s.to_owned()))
    }

    /// The job part of the fire id.
    pub fn job_id(&self) -> JobId {
        let job = self
            .0
            .rsplit_once('@')
            .map_or(self.0.as_str(), |(job, _)| job);
        JobId(job.to_owned())
    }

    /// The scheduled instant of the fire, in epoch milliseconds.
    pub fn due_ms(&self) -> i64 {
        self.0
            .rsplit_once('@')
            .and_then(|(_, ms)| ms.parse().ok())
            .unwrap_or_default()
    }

    /// The fire id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FireId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FireId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for FireId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        FireId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How urgent a job is. String form `high` | `normal` | `low`, parsed case-insensitively
/// (`"NORMAL"` is accepted, as Infinite-Scheduler producers send it), written lowercase.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Priority {
    /// Fired ahead of normal and low jobs that are due at the same time.
    High,
    /// The default.
    #[default]
    Normal,
    /// Fired after high and normal jobs that are due at the same time.
    Low,
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(|_| {
            serde::de::Error::custom(format_args!(
                "unknown priority `{s}`, expected one of high, normal, low"
            ))
        })
    }
}

/// One shard of the due index. All Redis keys of a shard share its hash tag ([`Shard::tag`]),
/// so multi-key scripts stay on one Redis Cluster slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shard(pub u16);

impl Shard {
    /// The shard of `key` among `shards` shards: `xxh3_64(key) % shards`.
    ///
    /// XXH3 (seed 0) is a frozen specification, so the mapping is stable across versions and
    /// machines. A shard count of 0 is treated as 1.
    pub fn of(key: &str, shards: u16) -> Shard {
        let shards = u64::from(shards.max(1));
        // The remainder is below `shards`, which came from a u16.
        Shard((xxh3_64(key.as_bytes()) % shards) as u16)
    }

    /// The shard number.
    pub fn index(self) -> u16 {
        self.0
    }

    /// The Redis Cluster hash tag of the shard, e.g. `{s17}`.
    pub fn tag(&self) -> String {
        format!("{{s{}}}", self.0)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use strum::IntoEnumIterator;

    #[test]
    fn job_id_accepts_ordinary_ids() {
        for id in [
            "a",
            "order-123-reminder",
            "sms:42@x",
            "héllo✓",
            &"x".repeat(256),
        ] {
            assert_eq!(JobId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn job_id_rejects_bad_ids() {
        assert_eq!(JobId::parse(""), Err(InvalidId::Empty));
        assert_eq!(
            JobId::parse(&"x".repeat(257)),
            Err(InvalidId::TooLong { len: 257 })
        );
        assert!(matches!(
            JobId::parse("a b"),
            Err(InvalidId::ForbiddenChar {
                what: "whitespace",
                at: 1
            })
        ));
        assert!(matches!(
            JobId::parse("a\tb"),
            Err(InvalidId::ForbiddenChar { at: 1, .. })
        ));
        assert!(matches!(
            JobId::parse("ab\u{7f}"),
            Err(InvalidId::ForbiddenChar {
                what: "a control character",
                at: 2
            })
        ));
        assert!(matches!(
            JobId::parse("a/b"),
            Err(InvalidId::ForbiddenChar { what: "`/`", .. })
        ));
        assert!(JobId::parse("a\u{a0}b").is_err(), "unicode whitespace");
        assert_eq!(
            JobId::parse("a b").unwrap_err().to_string(),
            "id contains whitespace at byte 1"
        );
    }

    #[test]
    fn job_id_serde_is_a_validated_string() {
        let id = JobId::parse("job-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""job-1""#);
        assert_eq!(serde_json::from_str::<JobId>(r#""job-1""#).unwrap(), id);
        assert!(serde_json::from_str::<JobId>(r#""a/b""#).is_err());
        assert!(serde_json::from_str::<JobId>(r#""""#).is_err());
    }

    #[test]
    fn derived_id_is_deterministic() {
        let a = JobId::derived("sked.ingest", 3, 42);
        assert_eq!(a.as_str(), "sked.ingest-3-42");
        assert_eq!(a, JobId::derived("sked.ingest", 3, 42));
        assert_ne!(a, JobId::derived("sked.ingest", 3, 43));
        assert_ne!(a, JobId::derived("sked.ingest", 4, 42));
    }

    #[test]
    fn derived_id_is_always_valid() {
        let long = "t".repeat(249);
        let odd = "a b/c\u{1}";
        for topic in [long.as_str(), odd, "", "ü".repeat(200).as_str()] {
            let id = JobId::derived(topic, i32::MIN, i64::MIN);
            assert_eq!(JobId::parse(id.as_str()).unwrap(), id, "{topic:?}");
            assert_eq!(id, JobId::derived(topic, i32::MIN, i64::MIN));
        }
        let a = JobId::derived(&long, 0, 1);
        let b = JobId::derived(&format!("{long}x"), 0, 1);
        assert_ne!(a, b);
        assert!(a.as_str().ends_with("-0-1"));
    }

    #[test]
    fn new_v7_ids_are_valid_and_distinct() {
        let a = JobId::new_v7();
        let b = JobId::new_v7();
        assert_ne!(a, b);
        assert_eq!(
            uuid::Uuid::parse_str(a.as_str()).unwrap().get_version_num(),
            7
        );
        assert!(JobId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn fire_id_is_job_id_and_due_ms() {
        let job = JobId::parse("order@1").unwrap();
        let due = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let fire = FireId::new(&job, due);
        assert_eq!(fire.as_str(), "order@1@1795428000000");
        assert_eq!(fire, FireId::new(&job, due));
        assert_eq!(fire.job_id(), job);
        assert_eq!(fire.due_ms(), due.timestamp_millis());
        assert_eq!(FireId::parse(fire.as_str()).unwrap(), fire);
        assert_eq!(FireId::parse("x"), Err(InvalidId::FireIdForm));
        assert_eq!(FireId::parse("x@y"), Err(InvalidId::FireIdForm));
        assert_eq!(FireId::parse("@1"), Err(InvalidId::Empty));
        let json = serde_json::to_string(&fire).unwrap();
        assert_eq!(serde_json::from_str::<FireId>(&json).unwrap(), fire);
    }

    #[test]
    fn priority_parses_case_insensitively_and_writes_lowercase() {
        assert_eq!(Priority::default(), Priority::Normal);
        assert_eq!("HIGH".parse::<Priority>().unwrap(), Priority::High);
        assert_eq!("Normal".parse::<Priority>().unwrap(), Priority::Normal);
        assert!("urgent".parse::<Priority>().is_err());
        assert_eq!(
            serde_json::from_str::<Priority>(r#""LOW""#).unwrap(),
            Priority::Low
        );
        for p in Priority::iter() {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Priority>(&json).unwrap(), p);
        }
        let err = serde_json::from_str::<Priority>(r#""urgent""#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected one of high, normal, low")
        );
    }

    #[test]
    fn shard_is_stable_xxh3_modulo() {
        // Pinned values: a change here would move every job to another shard.
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(
            Shard::of("", 64),
            Shard((0x2d06_8005_38d3_94c2_u64 % 64) as u16)
        );
        assert_eq!(Shard::of("order-123", 1), Shard(0));
        assert_eq!(Shard::of("order-123", 0), Shard(0));
        for key in ["a", "b", "order-123", "héllo"] {
            let s = Shard::of(key, 16);
            assert!(s.index() < 16);
            assert_eq!(s, Shard::of(key, 16));
            assert_eq!(u64::from(s.index()), xxh3_64(key.as_bytes()) % 16, "{key}");
        }
    }

    #[test]
    fn shards_spread_keys() {
        let mut seen = [0u32; 8];
        for i in 0..800 {
            seen[usize::from(Shard::of(&format!("job-{i}"), 8).index())] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn shard_tag_is_a_redis_hash_tag() {
        assert_eq!(Shard(17).tag(), "{s17}");
        assert_eq!(Shard(0).tag(), "{s0}");
    }
}
