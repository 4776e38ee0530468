//! The record a replay publishes for a dead letter: its headers, with the attempt reset and
//! the replay counted and identified (see the module docs).

use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use sked_core::kafka::headers as h;

use crate::letter::{self, SKED_REPLAY_ID};

/// The headers of a replayed letter.
pub struct ReplayRecord {
    /// All original headers but the four replay headers, then those.
    pub headers: OwnedHeaders,
}

/// The replay of `msg` by replay `id` at `now_ms`.
pub fn replay_record(id: &str, msg: &OwnedMessage, now_ms: i64) -> ReplayRecord {
    const REPLACED: [&str; 4] = [
        h::SKED_ATTEMPT,
        h::SKED_REPLAY_COUNT,
        h::SKED_REPLAYED_AT,
        SKED_REPLAY_ID,
    ];
    let mut headers = OwnedHeaders::new();
    if let Some(hs) = msg.headers() {
        for x in hs.iter().filter(|x| !REPLACED.contains(&x.key)) {
            headers = headers.insert(Header {
                key: x.key,
                value: x.value,
            });
        }
    }
    let count = (letter::replay_count(msg) + 1).to_string();
    let now = now_ms.to_string();
    let replay_id = format!("{id}:{}:{}", msg.partition(), msg.offset());
    for (key, value) in [
        (h::SKED_ATTEMPT, "1"),
        (h::SKED_REPLAY_COUNT, count.as_str()),
        (h::SKED_REPLAYED_AT, now.as_str()),
        (SKED_REPLAY_ID, replay_id.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    ReplayRecord { headers }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rdkafka::Timestamp;

    use super::*;

    #[test]
    fn replayed_headers_reset_the_attempt_and_count_the_replay() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "sked-attempt",
                value: Some("3"),
            })
            .insert(Header {
                key: "sked-replay-count",
                value: Some("1"),
            })
            .insert(Header {
                key: "traceparent",
                value: Some("00-abc"),
            })
            .insert(Header {
                key: "sked-replay-id",
                value: Some("old:0:1"),
            });
        let msg = OwnedMessage::new(
            Some(b"v".to_vec()),
            Some(b"k".to_vec()),
            "dlq".into(),
            Timestamp::NotAvailable,
            2,
            17,
            Some(headers),
        );
        let r = replay_record("r1", &msg, 42);
        let got: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|x| {
                (
                    x.key.to_owned(),
                    String::from_utf8(x.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("traceparent", "00-abc"),
            ("sked-attempt", "1"),
            ("sked-replay-count", "2"),
            ("sked-replayed-at", "42"),
            ("sked-replay-id", "r1:2:17"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);
    }
}
