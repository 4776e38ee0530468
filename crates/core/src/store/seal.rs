//! [`Keyring`]: sealing job payloads for Redis with AES-256-GCM, and opening them again.
//!
//! A sealed payload, as it sits in the payload field of a record (layout 4, record.rs):
//!
//! ```text
//! key id length (1 byte, 1-64), key id (ASCII)
//! nonce, 12 random bytes (a new one for every record written)
//! ciphertext of the payload JSON, then the 16-byte GCM tag
//! ```
//!
//! Direct encryption under the configured key (no per-record data key): the key id names
//! the key, the associated data is the job id, so a sealed payload moved to another job's
//! record does not open. Nonces are drawn from the operating system's random source; with
//! random 96-bit nonces one key must seal fewer than 2^32 records (NIST SP 800-38D, 8.3)
//! to keep the chance of a nonce repeat below 2^-32: docs/operations.md explains the
//! budget and the rotation that keeps within it.
//!
//! Keys are read from files when the configuration loads ([`crate::config::KeyMaterial`]);
//! they are never written to Redis, logged or printed.

use std::collections::BTreeMap;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};

use crate::config::{EncryptionOptions, valid_key_id};

/// Bytes of a GCM nonce.
const NONCE: usize = 12;
/// Bytes of a GCM tag.
const TAG: usize = 16;

/// Why a sealed payload does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It is sealed with a key that is not configured (`encryption.keys`).
    #[error("payload is sealed with encryption key `{0}`, which is not configured")]
    UnknownKey(String),
    /// It is damaged, was sealed for another job, or the key under its id is not the one it
    /// was sealed with.
    #[error(
        "sealed payload does not open with key `{0}` (damaged, moved, or another key under that id)"
    )]
    Damaged(String),
    /// It is not a sealed payload at all.
    #[error("sealed payload is malformed: {0}")]
    Malformed(&'static str),
}

/// The configured keys: which one seals new records, and every one that may open a record.
/// Cheap to share behind an `Arc`; `Debug` names the key ids only.
#[derive(Clone, Default)]
pub struct Keyring {
    /// The key new records are sealed with, when `encryption.enabled`.
    current: Option<(String, Aes256Gcm)>,
    /// Every configured key by id.
    keys: BTreeMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(|(id, _)| id))
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// No keys: records are written in clear and a sealed record does not open.
    pub fn none() -> Self {
        Self::default()
    }

    /// The keyring of a loaded configuration (whose key files the loader has read). Fails,
    /// naming the key, when a key was not loaded or `current_key` is not among them.
    pub fn from_options(options: &EncryptionOptions) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        for (id, key) in &options.keys {
            if !valid_key_id(id) {
                return Err(format!(
                    "`encryption.keys.{id}`: a key id is 1-64 of [A-Za-z0-9_.-]"
                ));
            }
            let material = key
                .material
                .as_ref()
                .ok_or_else(|| format!("`encryption.keys.{id}.file`: the key has not been read"))?;
            keys.insert(id.clone(), Aes256Gcm::new(material.expose().into()));
        }
        let current = if options.enabled {
            let cipher = keys.get(&options.current_key).ok_or_else(|| {
                format!(
                    "`encryption.current_key`: names `{}`, which is not in `encryption.keys`",
                    options.current_key
                )
            })?;
            Some((options.current_key.clone(), cipher.clone()))
        } else {
            None
        };
        Ok(Self { current, keys })
    }

    /// The id of the key new records are sealed with, if sealing is on.
    pub fn current_key(&self) -> Option<&str> {
        self.current.as_ref().map(|(id, _)| id.as_str())
    }

    /// True when new records are sealed.
    pub fn seals(&self) -> bool {
        self.current.is_some()
    }

    /// Seals `plaintext` of job `job_id` with the current key, appending the sealed form to
    /// `out`; `false` (nothing appended) when sealing is off.
    pub(crate) fn seal(&self, job_id: &str, plaintext: &[u8], out: &mut Vec<u8>) -> bool {
        let Some((id, cipher)) = &self.current else {
            return false;
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: job_id.as_bytes(),
                },
            )
            // AES-GCM fails only for inputs over 64 GiB; requests are capped far below.
            .expect("AES-GCM encryption of a bounded payload");
        out.reserve(1 + id.len() + NONCE + sealed.len());
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        true
    }

    /// The key id of a sealed payload, without opening it.
    pub(crate) fn key_id_of(sealed: &[u8]) -> Result<&str, OpenError> {
        let (&len, rest) = sealed.split_first().ok_or(OpenError::Malformed("empty"))?;
        let id = rest
            .get(..usize::from(len))
            .ok_or(OpenError::Malformed("truncated key id"))?;
        std::str::from_utf8(id).map_err(|_| OpenError::Malformed("key id is not UTF-8"))
    }

    /// Opens a payload sealed by [`Keyring::seal`] for job `job_id`, with whichever
    /// configured key its id names.
    pub(crate) fn open(&self, job_id: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let id = Self::key_id_of(sealed)?;
        let rest = &sealed[1 + id.len()..];
        if rest.len() < NONCE + TAG {
            return Err(OpenError::Malformed("shorter than nonce and tag"));
        }
        let cipher = self
            .keys
            .get(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let (nonce, ciphertext) = rest.split_at(NONCE);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: job_id.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Damaged(id.to_owned()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{EncryptionKeyOptions, KeyMaterial};

    /// A keyring with keys `k1` (byte 1 repeated) and `k2` (byte 2), sealing with `current`.
    pub(crate) fn keyring(current: Option<&str>, ids: &[&str]) -> Keyring {
        let keys = ids
            .iter()
            .map(|id| {
                let byte = id.as_bytes()[1] - b'0';
                (
                    id.to_string(),
                    EncryptionKeyOptions {
                        file: "/dev/null".into(),
                        material: Some(KeyMaterial::parse(&[byte; 32]).unwrap()),
                    },
                )
            })
            .collect();
        Keyring::from_options(&EncryptionOptions {
            enabled: current.is_some(),
            current_key: current.unwrap_or("").into(),
            keys,
        })
        .unwrap()
    }

    #[test]
    fn seals_and_opens_with_any_configured_key() {
        let old = keyring(Some("k1"), &["k1"]);
        let mut sealed = Vec::new();
        assert!(old.seal("job-1", br#"{"a":1}"#, &mut sealed));
        assert_eq!(Keyring::key_id_of(&sealed), Ok("k1"));
        assert!(!sealed.windows(5).any(|w| w == br#""a":1"#));
        assert_eq!(sealed.len(), 1 + 2 + NONCE + 7 + TAG);
        // After a rotation: new writes use k2, k1 still opens.
        let rotated = keyring(Some("k2"), &["k1", "k2"]);
        assert_eq!(rotated.open("job-1", &sealed).unwrap(), br#"{"a":1}"#);
        let mut newer = Vec::new();
        rotated.seal("job-1", b"{}", &mut newer);
        assert_eq!(Keyring::key_id_of(&newer), Ok("k2"));
        // Two seals of the same bytes differ (a fresh nonce each).
        let mut again = Vec::new();
        old.seal("job-1", br#"{"a":1}"#, &mut again);
        assert_ne!(again, sealed);
    }

    #[test]
    fn what_does_not_open_says_why() {
        let ring = keyring(Some("k1"), &["k1"]);
        let mut sealed = Vec::new();
        ring.seal("job-1", b"[1,2,3]", &mut sealed);
        assert_eq!(
            keyring(Some("k2"), &["k2"]).open("job-1", &sealed),
            Err(OpenError::UnknownKey("k1".into()))
        );
        assert_eq!(
            ring.open("job-2", &sealed),
            Err(OpenError::Damaged("k1".into())),
            "sealed for another job"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            ring.open("job-1", &flipped),
            Err(OpenError::Damaged("k1".into()))
        );
        for cut in 0..(1 + 2 + NONCE + TAG) {
            assert!(
                matches!(
                    ring.open("job-1", &sealed[..cut]),
                    Err(OpenError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        assert!(!Keyring::none().seals());
        assert!(!Keyring::none().seal("j", b"{}", &mut Vec::new()));
        assert_eq!(
            format!("{ring:?}"),
            r#"Keyring { current: Some("k1"), keys: ["k1"] }"#
        );
    }
}
