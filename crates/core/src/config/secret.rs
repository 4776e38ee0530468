//! [`Secret`]: a configuration value that is never printed, and the `_file` rule that lets
//! every secret key be given as a path to a mounted file instead (a Kubernetes Secret).
//!
//! The rule, the same for every secret key:
//! - a secret key `X` may instead be given as `X_file`, the path of a file holding the value;
//!   the file is read when the configuration loads, and one trailing newline (`\n` or
//!   `\r\n`) is dropped, so `echo s3cret > file` and `kubectl create secret` both work;
//! - giving both `X` and `X_file` is a configuration error naming the key;
//! - a file that cannot be read, or is empty, is a configuration error naming the key and the
//!   path, never the contents;
//! - for the tables that pass arbitrary names through (`kafka.rdkafka`, `apps.<name>.headers`)
//!   the file variant is a table beside them: `kafka.rdkafka_files.<property> = path`,
//!   `apps.<name>.header_files.<Header> = path`.
//!
//! Encryption keys (`encryption.keys.<id>.file`) come from files only.

use std::{fmt, path::Path};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// What Debug, Display and Serialize print instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret string: a password, a token, a credential header's value. Its `Debug`,
/// `Display` and `Serialize` print `<redacted>`, so it cannot reach a log line, an error
/// message or `--dump-config` by accident; [`Secret::expose`] is the one way to the value,
/// used where it is handed to a client. The memory is wiped when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value, for the client that needs it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a secret file (see the module docs): one trailing newline dropped; an empty
    /// file or one that is not UTF-8 is refused. The error names the path, never the contents.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if text.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(Self::new(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// A 256-bit encryption key read from a file (`encryption.keys.<id>.file`). Debug prints
/// `<redacted>`; it is not serializable; the bytes are wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Zeroizing<[u8; 32]>);

impl KeyMaterial {
    /// The key bytes, for the cipher.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses a key file: exactly 32 raw bytes, or (surrounding whitespace ignored) 64 hex
    /// digits, or the standard base64 of 32 bytes (`openssl rand -base64 32`). Anything else
    /// is refused with what was found (its length, never its contents).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() == 32 {
            key.copy_from_slice(bytes);
            return Ok(Self(key));
        }
        let text = std::str::from_utf8(bytes).map(str::trim).unwrap_or("");
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, pair) in text.as_bytes().chunks(2).enumerate() {
                let hex = std::str::from_utf8(pair).unwrap_or("00");
                key[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
            }
            return Ok(Self(key));
        }
        use base64::Engine as _;
        if !text.is_empty()
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text)
        {
            let decoded = Zeroizing::new(decoded);
            if decoded.len() == 32 {
                key.copy_from_slice(&decoded);
                return Ok(Self(key));
            }
            return Err(format!(
                "holds base64 of {} bytes; a key is 32 bytes",
                decoded.len()
            ));
        }
        Err(format!(
            "holds {} bytes that are neither 32 raw bytes, 64 hex digits nor base64 of 32 bytes",
            bytes.len()
        ))
    }

    /// Reads and parses a key file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        Self::parse(&bytes).map_err(|why| format!("{} {why}", path.display()))
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Reads every file the configuration names for a secret (see the module docs) into the
/// value it stands for; returns one problem per key that cannot be loaded. Encryption keys
/// are read whenever listed (records sealed with them stay readable with `enabled = false`).
pub(super) fn load_files(config: &mut super::Config) -> Vec<String> {
    let mut problems = Vec::new();
    let redis = &mut config.redis;
    if let Some(path) = &redis.password_file {
        if redis.password.is_some() {
            problems.push(
                "`redis.password` and `redis.password_file` are both given; give one".to_owned(),
            );
        } else {
            match Secret::from_file(path) {
                Ok(secret) => redis.password = Some(secret),
                Err(why) => problems.push(format!("`redis.password_file`: {why}")),
            }
        }
    }
    let kafka = &mut config.kafka;
    kafka.rdkafka_secrets.clear();
    for (property, path) in &kafka.rdkafka_files {
        if kafka.rdkafka.contains_key(property) {
            problems.push(format!(
                "`kafka.rdkafka.{property}` and `kafka.rdkafka_files.{property}` are both given; give one"
            ));
            continue;
        }
        match Secret::from_file(path) {
            Ok(secret) => {
                kafka.rdkafka_secrets.insert(property.clone(), secret);
            }
            Err(why) => problems.push(format!("`kafka.rdkafka_files.{property}`: {why}")),
        }
    }
    for (name, app) in &mut config.apps {
        app.header_secrets.clear();
        for (header, path) in &app.header_files {
            if app.headers.keys().any(|h| h.eq_ignore_ascii_case(header)) {
                problems.push(format!(
                    "`apps.{name}.headers.{header}` and `apps.{name}.header_files.{header}` are both given; give one"
                ));
                continue;
            }
            match Secret::from_file(path) {
                Ok(secret) => {
                    app.header_secrets.insert(header.clone(), secret);
                }
                Err(why) => problems.push(format!("`apps.{name}.header_files.{header}`: {why}")),
            }
        }
    }
    if let Some(oidc) = &mut config.console.oidc
        && let Some(path) = &oidc.client_secret_file
    {
        if oidc.client_secret.is_some() {
            problems.push(
                "`console.oidc.client_secret` and `console.oidc.client_secret_file` are both given; give one"
                    .to_owned(),
            );
        } else {
            match Secret::from_file(path) {
                Ok(secret) => oidc.client_secret = Some(secret),
                Err(why) => problems.push(format!("`console.oidc.client_secret_file`: {why}")),
            }
        }
    }
    for (id, key) in &mut config.encryption.keys {
        match KeyMaterial::from_file(&key.file) {
            Ok(material) => key.material = Some(material),
            Err(why) => problems.push(format!("`encryption.keys.{id}.file`: {why}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        #[derive(Serialize)]
        struct T {
            password: Secret,
        }
        let toml = toml::to_string(&T {
            password: s.clone(),
        })
        .unwrap();
        assert!(!toml.contains("hunter2"), "{toml}");
        assert_eq!(s.expose(), "hunter2");
        let back: Secret = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back.expose(), "x");
    }

    #[test]
    fn secret_files_drop_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("sked-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (body, want) in [
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw", "pw"),
            ("pw\n\n", "pw\n"),
            (" pw ", " pw "),
        ] {
            let f = dir.join("s");
            std::fs::write(&f, body).unwrap();
            assert_eq!(Secret::from_file(&f).unwrap().expose(), want, "{body:?}");
        }
        let f = dir.join("empty");
        std::fs::write(&f, "\n").unwrap();
        assert!(Secret::from_file(&f).unwrap_err().contains("is empty"));
        let missing = Secret::from_file(&dir.join("nope")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn key_files_take_raw_hex_or_base64() {
        let raw = [7u8; 32];
        assert_eq!(KeyMaterial::parse(&raw).unwrap().expose(), &raw);
        let hex = format!("{}\n", "07".repeat(32));
        assert_eq!(KeyMaterial::parse(hex.as_bytes()).unwrap().expose(), &raw);
        use base64::Engine as _;
        let b64 = format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        assert_eq!(KeyMaterial::parse(b64.as_bytes()).unwrap().expose(), &raw);
        let short = KeyMaterial::parse(b"c2hvcnQ=").unwrap_err();
        assert!(short.contains("base64 of 5 bytes"), "{short}");
        let junk = KeyMaterial::parse(b"not a key!").unwrap_err();
        assert!(junk.contains("10 bytes"), "{junk}");
        assert!(!junk.contains("not a key"), "{junk}");
        assert_eq!(format!("{:?}", KeyMaterial::parse(&raw).unwrap()), REDACTED);
    }
}
