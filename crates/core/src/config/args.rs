//! Command-line flags every sked binary shares, and `--dump-config`.

use std::path::PathBuf;

use super::{Config, Layers, load};

/// `--config`, `--set`, `--dump-config`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// TOML configuration file, applied over the embedded defaults.
    #[arg(long, short = 'c', env = "SKED_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one key, after the file and the SKED_* environment (repeatable), e.g.
    /// `--set kafka.brokers=broker:9092`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the effective configuration as TOML (secrets redacted) and exit.
    #[arg(long)]
    pub dump_config: bool,
}

impl Args {
    /// Loads the configuration from these flags and the process environment.
    pub fn load(&self) -> Result<Config, super::Error> {
        load(&Layers::from_process(
            self.config.clone(),
            self.sets.clone(),
        ))
    }
}

const SECRET_MARKERS: [&str; 4] = ["password", "secret", "token", "key.pem"];
const REDACTED: &str = "<redacted>";

impl Config {
    /// The configuration as TOML, with passwords in URLs and secret-looking librdkafka
    /// properties replaced by `<redacted>`.
    pub fn dump(&self) -> String {
        let mut copy = self.clone();
        copy.redis.url = redact_url(&copy.redis.url);
        for (key, value) in copy.kafka.rdkafka.iter_mut() {
            if SECRET_MARKERS.iter().any(|m| key.contains(m)) || key == "sasl.username" {
                *value = REDACTED.to_owned();
            }
        }
        toml::to_string_pretty(&copy)
            .unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

/// `redis://user:pass@host` → `redis://user:<redacted>@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    if userinfo.contains(':') {
        format!("{scheme}://{user}:{REDACTED}@{host}")
    } else {
        format!("{scheme}://{REDACTED}@{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_redacts_secrets() {
        let layers = Layers {
            sets: vec![
                "redis.url=redis://sked:hunter2@redis:6379".into(),
                "kafka.rdkafka.sasl.password=s3cret".into(),
            ],
            ..Default::default()
        };
        let config = load(&layers).unwrap();
        let text = config.dump();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("redis://sked:<redacted>@redis:6379"),
            "{text}"
        );
        // The dump is itself a valid configuration file.
        let _: Config = toml::from_str(&text).unwrap();
    }
}
