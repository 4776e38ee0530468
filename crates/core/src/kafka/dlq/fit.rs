//! Dead letters that fit: a letter larger than the producer or the broker accepts is cut, so
//! every record that cannot be handled reaches the DLQ whatever its size.
//!
//! What a letter holds for a limit of `n` bytes, the first that fits:
//! 1. the whole letter: nothing changes;
//! 2. the first bytes of the original value (cut at a character boundary when the value is
//!    UTF-8), the key and every header, and `sked-truncated: true`, `sked-original-bytes:
//!    <length of the original value>`, `sked-original-sha256: <SHA-256 of the original
//!    value, lowercase hex>`;
//! 3. the same without the original record's own headers (when they alone do not fit): sked's
//!    stay (`sked-*`, the DLQ header set, `traceparent`, `retry-count`, `last-error`) and
//!    `sked-original-headers-dropped: <count>` says how many went;
//! 4. nothing: the key and sked's headers alone are over `n` ([`Fitted::Unfit`]); the sender
//!    drops the letter, logs its origin and counts it.
//!
//! Sizes are counted as librdkafka counts a record against `message.max.bytes` (key + value +
//! per header its key, its value and two length varints + the record's framing), with
//! [`FRAMING`] bytes to spare for the record batch around it, which a broker counts against
//! the topic's `max.message.bytes`.

use rdkafka::message::{Header, Headers, OwnedHeaders};
use sha2::{Digest, Sha256};

use super::Record;
use crate::kafka::headers as h;

/// Framing librdkafka counts per record (`RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`).
const RECORD_OVERHEAD: usize = 36;
/// Framing per header: the key and value length varints, at most 5 bytes each.
const HEADER_OVERHEAD: usize = 10;
/// Bytes kept free for the record batch around one record (61 in the v2 format) and slack.
pub const FRAMING: usize = 128;

/// The headers a cut letter sets itself.
const MARKS: [&str; 4] = [
    h::SKED_TRUNCATED,
    h::SKED_ORIGINAL_BYTES,
    h::SKED_ORIGINAL_SHA256,
    h::SKED_HEADERS_DROPPED,
];

/// Non-`sked-` headers that are sked's own and stay when the original headers go.
const OWN: [&str; 10] = [
    h::ORIGINAL_TOPIC,
    h::ORIGINAL_PARTITION,
    h::ORIGINAL_OFFSET,
    h::ERROR_MESSAGE,
    h::ERROR_TIMESTAMP,
    h::FAILED_AT,
    h::ERROR_REASON,
    h::TRACEPARENT,
    h::RETRY_COUNT,
    h::LAST_ERROR,
];

/// A letter fit to a limit.
#[derive(Debug, Clone)]
pub enum Fitted {
    /// The letter as built.
    Whole(Record),
    /// Cut (see the module docs).
    Cut {
        /// What to produce.
        record: Record,
        /// Bytes of the original value kept.
        kept: usize,
        /// Bytes of the original value.
        original: usize,
        /// Original headers left out.
        headers_dropped: usize,
    },
    /// Does not fit even without value and original headers.
    Unfit {
        /// Bytes the smallest form needs (framing included).
        needed: usize,
    },
}

/// Bytes `record` counts for against a `message.max.bytes` (without [`FRAMING`]).
pub fn size(record: &Record) -> usize {
    RECORD_OVERHEAD
        + record.key.as_ref().map_or(0, Vec::len)
        + record.payload.as_ref().map_or(0, Vec::len)
        + headers_size(&record.headers)
}

fn headers_size(headers: &OwnedHeaders) -> usize {
    headers
        .iter()
        .map(|x| HEADER_OVERHEAD + x.key.len() + x.value.map_or(0, <[u8]>::len))
        .sum()
}

/// True for a header that stays when the original record's own headers go.
fn own(key: &str) -> bool {
    key.starts_with("sked-") || OWN.contains(&key)
}

/// `letter` fit to `limit` bytes (see the module docs).
pub fn fit(letter: &Record, limit: usize) -> Fitted {
    if size(letter) + FRAMING <= limit {
        return Fitted::Whole(letter.clone());
    }
    let value = letter.payload.as_deref().unwrap_or_default();
    let digest: String = Sha256::digest(value)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let original = value.len().to_string();
    let key_len = letter.key.as_ref().map_or(0, Vec::len);
    let mut needed = 0;
    for drop_own in [false, true] {
        let mut headers = OwnedHeaders::new();
        let mut dropped = 0usize;
        for x in letter.headers.iter() {
            if MARKS.contains(&x.key) {
                continue;
            }
            if drop_own && !own(x.key) {
                dropped += 1;
                continue;
            }
            headers = headers.insert(Header {
                key: x.key,
                value: x.value,
            });
        }
        let dropped_text = dropped.to_string();
        let mut marks = vec![
            (h::SKED_TRUNCATED, "true"),
            (h::SKED_ORIGINAL_BYTES, original.as_str()),
            (h::SKED_ORIGINAL_SHA256, digest.as_str()),
        ];
        if drop_own {
            marks.push((h::SKED_HEADERS_DROPPED, dropped_text.as_str()));
        }
        for (key, v) in marks {
            headers = headers.insert(Header {
                key,
                value: Some(v.as_bytes()),
            });
        }
        let fixed = RECORD_OVERHEAD + key_len + headers_size(&headers) + FRAMING;
        needed = fixed;
        if fixed > limit {
            continue;
        }
        let kept = cut(value, limit - fixed);
        return Fitted::Cut {
            record: Record {
                key: letter.key.clone(),
                payload: letter.payload.as_ref().map(|v| v[..kept].to_vec()),
                headers,
            },
            kept,
            original: value.len(),
            headers_dropped: dropped,
        };
    }
    Fitted::Unfit { needed }
}

/// How many leading bytes of `value` to keep in `room` bytes: all that fit, one character
/// boundary back when `value` is UTF-8 (so a cut JSON request still reads as text).
fn cut(value: &[u8], room: usize) -> usize {
    let mut kept = room.min(value.len());
    if let Ok(text) = std::str::from_utf8(value) {
        while kept > 0 && !text.is_char_boundary(kept) {
            kept -= 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn letter(value: Vec<u8>, foreign_header: usize) -> Record {
        let big = "h".repeat(foreign_header);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "x-foreign",
                value: Some(big.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_REASON,
                value: Some("payload_too_large"),
            })
            .insert(Header {
                key: h::ORIGINAL_OFFSET,
                value: Some("7"),
            });
        Record {
            key: Some(b"k1".to_vec()),
            payload: Some(value),
            headers,
        }
    }

    fn header(r: &Record, name: &str) -> Option<String> {
        r.headers
            .iter()
            .find(|x| x.key == name)
            .and_then(|x| x.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn a_letter_that_fits_is_unchanged() {
        let l = letter(vec![b'x'; 1000], 10);
        let Fitted::Whole(r) = fit(&l, 10_000) else {
            panic!("fits")
        };
        assert_eq!(r.payload, l.payload);
        assert_eq!(header(&r, h::SKED_TRUNCATED), None);
    }

    #[test]
    fn a_large_value_is_cut_to_the_limit_and_marked() {
        let value = vec![b'x'; 2 << 20];
        let l = letter(value.clone(), 10);
        let limit = (1 << 20) + 65536;
        let Fitted::Cut {
            record,
            kept,
            original,
            headers_dropped,
        } = fit(&l, limit)
        else {
            panic!("cut")
        };
        assert_eq!((original, headers_dropped), (2 << 20, 0));
        assert!(size(&record) + FRAMING <= limit);
        assert!(kept > limit - 1024, "keeps about the limit: {kept}");
        assert_eq!(record.payload.as_deref(), Some(&value[..kept]));
        assert_eq!(record.key, l.key);
        assert_eq!(header(&record, h::SKED_TRUNCATED).as_deref(), Some("true"));
        assert_eq!(
            header(&record, h::SKED_ORIGINAL_BYTES),
            Some((2 << 20).to_string())
        );
        let sha: String = Sha256::digest(&value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(header(&record, h::SKED_ORIGINAL_SHA256), Some(sha));
        assert_eq!(header(&record, "x-foreign").map(|v| v.len()), Some(10));
        assert_eq!(header(&record, h::SKED_HEADERS_DROPPED), None);
    }

    #[test]
    fn utf8_values_are_cut_at_a_character_boundary() {
        let value = "é".repeat(3000).into_bytes();
        for limit in 2000..2010 {
            let Fitted::Cut { record, .. } = fit(&letter(value.clone(), 1), limit) else {
                panic!("cut")
            };
            assert!(std::str::from_utf8(record.payload.as_deref().unwrap()).is_ok());
        }
    }

    #[test]
    fn original_headers_go_when_they_alone_do_not_fit_and_sked_headers_stay() {
        let l = letter(vec![b'x'; 100], 50_000);
        let Fitted::Cut {
            record,
            headers_dropped,
            ..
        } = fit(&l, 20_000)
        else {
            panic!("cut")
        };
        assert_eq!(headers_dropped, 1);
        assert_eq!(header(&record, "x-foreign"), None);
        assert_eq!(
            header(&record, h::SKED_REASON).as_deref(),
            Some("payload_too_large")
        );
        assert_eq!(header(&record, h::ORIGINAL_OFFSET).as_deref(), Some("7"));
        assert_eq!(
            header(&record, h::SKED_HEADERS_DROPPED).as_deref(),
            Some("1")
        );
        assert_eq!(record.payload.as_deref(), Some(&[b'x'; 100][..]));
    }

    #[test]
    fn a_letter_whose_own_headers_do_not_fit_is_unfit() {
        let Fitted::Unfit { needed } = fit(&letter(vec![b'x'; 100], 10), 200) else {
            panic!("unfit")
        };
        assert!(needed > 200);
    }

    #[test]
    fn a_cut_letter_cut_again_keeps_one_set_of_marks() {
        let l = letter(vec![b'x'; 10_000], 1);
        let Fitted::Cut { record, .. } = fit(&l, 5000) else {
            panic!("cut")
        };
        let Fitted::Cut { record, .. } = fit(&record, 2500) else {
            panic!("cut again")
        };
        let marks = record
            .headers
            .iter()
            .filter(|x| x.key == h::SKED_TRUNCATED)
            .count();
        assert_eq!(marks, 1);
    }

    proptest! {
        #[test]
        fn what_fit_returns_always_fits(
            value in 0usize..20_000,
            foreign in 0usize..20_000,
            limit in 1000usize..40_000,
        ) {
            let l = letter(vec![b'v'; value], foreign);
            match fit(&l, limit) {
                Fitted::Whole(r) | Fitted::Cut { record: r, .. } => {
                    prop_assert!(size(&r) + FRAMING <= limit);
                }
                Fitted::Unfit { needed } => prop_assert!(needed > limit),
            }
        }
    }
}
