//! Command-line flags every sked binary shares, and `--dump-config`.

use std::path::PathBuf;

use super::{Config, Layers, REDACTED, load};

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

/// librdkafka properties whose name contains one of these hold secrets (`sasl.password`,
/// `ssl.key.password`, `ssl.keystore.password`, `sasl.oauthbearer.client.secret`,
/// `ssl.key.pem`, ...).
const SECRET_MARKERS: [&str; 4] = ["password", "secret", "token", "key.pem"];
/// Also redacted: who the client is (`sasl.username`) and the OAUTHBEARER settings string.
const SECRET_PROPERTIES: [&str; 2] = ["sasl.username", "sasl.oauthbearer.config"];
/// HTTP header names (lowercase) containing one of these carry credentials
/// (`Authorization`, `X-Api-Key`, `Cookie`, ...).
const SECRET_HEADER_MARKERS: [&str; 9] = [
    "auth",
    "token",
    "secret",
    "key",
    "password",
    "cookie",
    "session",
    "signature",
    "credential",
];

impl Config {
    /// The configuration as TOML, with passwords in URLs (`redis.url`, `apps.*.url`),
    /// secret-looking librdkafka properties and credential-carrying HTTP headers of apps
    /// replaced by `<redacted>`.
    pub fn dump(&self) -> String {
        let mut copy = self.clone();
        copy.redis.url = redact_url(&copy.redis.url);
        // A password read from `password_file` is shown as the file, not as a value too (the
        // dump stays a loadable configuration).
        if copy.redis.password_file.is_some() {
            copy.redis.password = None;
        }
        if let Some(oidc) = &mut copy.console.oidc
            && oidc.client_secret_file.is_some()
        {
            oidc.client_secret = None;
        }
        for (key, value) in copy.kafka.rdkafka.iter_mut() {
            if SECRET_MARKERS.iter().any(|m| key.contains(m))
                || SECRET_PROPERTIES.contains(&key.as_str())
            {
                *value = REDACTED.to_owned();
            }
        }
        for app in copy.apps.values_mut() {
            if let Some(url) = &mut app.url {
                *url = redact_url(url);
            }
            for (name, value) in app.headers.iter_mut() {
                let name = name.to_ascii_lowercase();
                if SECRET_HEADER_MARKERS.iter().any(|m| name.contains(m)) {
                    *value = REDACTED.to_owned();
                }
            }
        }
        toml::to_string_pretty(&copy)
            .unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

/// `redis://user:pass@host` → `redis://user:<redacted>@host`; each URL of a comma-separated
/// list (a cluster's seed nodes) alike.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        let urls: Vec<String> = super::split_urls(url).into_iter().map(redact_one).collect();
        return urls.join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
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
                "kafka.rdkafka.sasl.oauthbearer.config=principal=sked secret=0auth".into(),
                "apps.hook.url=https://hook:w3bhook@hooks.example/run".into(),
                "apps.hook.headers.Authorization=Bearer t0ken".into(),
                "apps.hook.headers.X-Api-Key=k3y".into(),
                "apps.hook.headers.Content-Type=application/json".into(),
            ],
            ..Default::default()
        };
        let config = load(&layers).unwrap();
        let text = config.dump();
        assert!(!text.contains("hunter2"), "{text}");
        for secret in ["s3cret", "0auth", "w3bhook", "t0ken", "k3y"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("https://hook:<redacted>@hooks.example/run"),
            "{text}"
        );
        assert!(text.contains("application/json"), "{text}");
        assert!(
            text.contains("redis://sked:<redacted>@redis:6379"),
            "{text}"
        );
        // The dump is itself a valid configuration file.
        let _: Config = toml::from_str(&text).unwrap();
    }

    #[test]
    fn every_cluster_seed_url_is_redacted() {
        let seeds = "rediss://sked:pw1@a:7000, rediss://sked:pw1@b:7000,rediss://c:7000";
        assert_eq!(
            redact_url(seeds),
            "rediss://sked:<redacted>@a:7000,rediss://sked:<redacted>@b:7000,rediss://c:7000"
        );
        assert_eq!(redact_url("redis://:pw@a:1"), "redis://:<redacted>@a:1");
        // A comma inside a password is not a list separator.
        assert_eq!(
            redact_url("redis://u:pa,ss@h:1,redis://u:x,y@g:2"),
            "redis://u:<redacted>@h:1,redis://u:<redacted>@g:2"
        );
        assert_eq!(redact_url("https://h/run?ids=1,2"), "https://h/run?ids=1,2");
    }
}
