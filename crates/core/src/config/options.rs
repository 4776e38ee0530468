//! The option structs. Every field has a default in `default.toml`; structs reject unknown keys.

use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroU32, path::PathBuf};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, KeyMaterial, Secret};

/// The whole configuration of an installation. Every service reads the same file and uses the
/// sections it needs, so one ConfigMap serves a whole deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// IANA zone for zone-less times in requests.
    pub default_timezone: Tz,
    /// Kafka connection.
    pub kafka: KafkaOptions,
    /// Redis connection and key layout.
    pub redis: RedisOptions,
    /// Topic names.
    pub topics: TopicsOptions,
    /// Request limits.
    pub limits: LimitsOptions,
    /// Ingest service.
    pub ingest: IngestOptions,
    /// REST API (ingest service).
    pub http: HttpOptions,
    /// Admin endpoints (every service).
    pub admin: AdminOptions,
    /// Registered apps, by name.
    pub apps: BTreeMap<String, AppOptions>,
    /// Exclusion calendars, by name (read-only through the API; see
    /// [`crate::schedule::Calendar`] for the keys).
    pub calendars: BTreeMap<String, crate::schedule::Calendar>,
    /// Logging.
    pub log: LogOptions,
    /// Scheduler service.
    pub scheduler: SchedulerOptions,
    /// Worker service.
    pub worker: WorkerOptions,
    /// Replayer service.
    pub replayer: ReplayerOptions,
    /// Who may call the HTTP APIs.
    pub auth: super::AuthOptions,
    /// Submission quotas per tenant and app.
    #[serde(default)]
    pub quotas: super::QuotasOptions,
    /// Execution limits shared by every worker (start rates, concurrency keys).
    #[serde(default)]
    pub global_limits: super::GlobalLimitsOptions,
    /// Encryption of job payloads at rest in Redis.
    pub encryption: EncryptionOptions,
    /// The web console (`sked-console`).
    #[serde(default)]
    pub console: ConsoleOptions,
}

/// `[console]`: the web console, a service of its own that calls the public APIs with the
/// signed-in user's token (docs/console.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleOptions {
    /// `host:port` to listen on.
    pub listen_addr: SocketAddr,
    /// Base URL of the REST API (the ingest service's `http.listen_addr`).
    pub api_url: String,
    /// Base URL of the DLQ API (the replayer's `replayer.listen_addr`).
    pub dlq_api_url: String,
    /// The path the console is served under behind an ingress (`/sked`); empty: `/`.
    pub path_prefix: String,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Off only for plain-HTTP
    /// access from another host, or for Safari on `http://localhost` (Chromium and Firefox
    /// count `localhost` as secure; Safari does not).
    pub secure_cookie: bool,
    /// A session unused this long is signed out.
    pub session_idle: super::HumanDuration,
    /// A session is signed out this long after sign-in, used or not.
    pub session_max: super::HumanDuration,
    /// How often open pages refresh their live parts (0s: never).
    pub refresh: super::HumanDuration,
    /// Sign-in through an OpenID Connect provider (the authorization-code flow with PKCE),
    /// beside the token form. Not set: tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcOptions>,
}

/// Which token of the provider's answer the console sends to sked's APIs as the user's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OidcToken {
    /// The access token: it must be a JWT that `auth.jwt` accepts (its audience is sked's).
    #[default]
    AccessToken,
    /// The ID token (its audience is `client_id`: list that in `auth.jwt.audience`).
    IdToken,
}

/// `[console.oidc]`: sign in through an OpenID Connect provider (docs/console.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcOptions {
    /// The provider's issuer URL; its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration` and must name the same issuer.
    pub issuer: String,
    /// The console's client id at the provider.
    pub client_id: String,
    /// The client secret (sent with HTTP Basic to the token endpoint). Not set: a public
    /// client, protected by PKCE only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// File holding `client_secret` (a mounted Secret); not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The console's callback as the browser reaches it and as registered at the provider:
    /// `https://<host><console.path_prefix>/oidc/callback`.
    pub redirect_url: String,
    /// Scopes requested; must include `openid`.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The token sent to the APIs: `access_token` or `id_token`.
    #[serde(default)]
    pub token: OidcToken,
    /// The provider's name on the sign-in button ("Sign in with <name>").
    #[serde(default = "default_oidc_name")]
    pub name: String,
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into()]
}

fn default_oidc_name() -> String {
    "single sign-on".into()
}

impl OidcOptions {
    fn validate(&self, prefix: &str, check: &mut impl FnMut(bool, &str, &str)) {
        let url = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        check(
            url(&self.issuer),
            "console.oidc.issuer",
            "must be an http:// or https:// URL",
        );
        check(
            !self.client_id.trim().is_empty(),
            "console.oidc.client_id",
            "must not be empty",
        );
        let callback = format!("{prefix}/oidc/callback");
        check(
            url(&self.redirect_url)
                && !self.redirect_url.contains(['?', '#'])
                && self.redirect_url.ends_with(&callback),
            "console.oidc.redirect_url",
            &format!(
                "must be the console's callback as the browser reaches it: an http:// or https:// URL ending in `{callback}` (console.path_prefix + /oidc/callback)"
            ),
        );
        check(
            self.scopes.iter().any(|s| s == "openid"),
            "console.oidc.scopes",
            "must include `openid`",
        );
        check(
            self.scopes.iter().all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            }),
            "console.oidc.scopes",
            "every scope must be printable ASCII without spaces, `\"` or `\\`",
        );
        check(
            !self.name.trim().is_empty() && self.name.chars().count() <= 60,
            "console.oidc.name",
            "must be 1 to 60 characters",
        );
    }
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            api_url: "http://127.0.0.1:8080".into(),
            dlq_api_url: "http://127.0.0.1:8081".into(),
            path_prefix: String::new(),
            secure_cookie: true,
            session_idle: Duration::from_secs(30 * 60).into(),
            session_max: Duration::from_secs(12 * 3600).into(),
            refresh: Duration::from_secs(2).into(),
            oidc: None,
        }
    }
}

impl ConsoleOptions {
    fn validate(&self, check: &mut impl FnMut(bool, &str, &str)) {
        for (key, url) in [
            ("console.api_url", &self.api_url),
            ("console.dlq_api_url", &self.dlq_api_url),
        ] {
            check(
                url.starts_with("http://") || url.starts_with("https://"),
                key,
                "must be an http:// or https:// URL",
            );
        }
        let p = &self.path_prefix;
        check(
            p.is_empty()
                || (p.starts_with('/')
                    && !p.ends_with('/')
                    && p[1..].split('/').all(|seg| {
                        !seg.is_empty()
                            && seg
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
                    })),
            "console.path_prefix",
            "must be empty or a path such as `/sked` (a leading `/`, no trailing `/`, segments of letters, digits and `-_.~`)",
        );
        check(
            !self.session_idle.0.is_zero() && self.session_idle.0 <= self.session_max.0,
            "console.session_idle",
            "must be more than 0s and at most `console.session_max`",
        );
        check(
            self.session_max.0 <= std::time::Duration::from_secs(7 * 86400),
            "console.session_max",
            "must be at most 7d",
        );
        if let Some(oidc) = &self.oidc {
            oidc.validate(&self.path_prefix, check);
        }
    }
}

/// `[encryption]`: AES-256-GCM encryption of job payloads in Redis (store/seal.rs,
/// docs/operations.md "Payload encryption at rest").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionOptions {
    /// Seal the payload of every record written from now on with `current_key`. Off: new
    /// records are written in clear; records sealed before are still read with `keys`.
    pub enabled: bool,
    /// Id of the key new records are sealed with (one of `keys`); required when `enabled`.
    pub current_key: String,
    /// Every key a stored record may be sealed with, by id (1-64 of `[A-Za-z0-9_.-]`). Keep a
    /// retired key here until no record sealed with it is left.
    pub keys: BTreeMap<String, EncryptionKeyOptions>,
}

/// `[encryption.keys.<id>]`: one key-encryption key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyOptions {
    /// File holding the 256-bit key: 32 raw bytes, 64 hex digits or base64 of 32 bytes (a
    /// Kubernetes Secret mounted as files). Read at start; never stored in Redis.
    pub file: PathBuf,
    /// The key read from `file` when the configuration loaded.
    #[serde(skip)]
    pub material: Option<KeyMaterial>,
}

/// Most finished attempts kept per job (`worker.attempts_kept`).
pub const ATTEMPTS_KEPT_MAX: usize = 100;

/// `[worker]`: executing fired jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerOptions {
    /// Consumer group of the workers.
    pub group_id: String,
    /// Due topics to consume; empty means `topics.due` plus every app's own topic.
    pub topics: Vec<String>,
    /// Most jobs running at once in one worker process; at the bound the partitions are paused.
    pub max_in_flight: usize,
    /// Handler timeout of jobs and apps that set none.
    pub default_timeout: HumanDuration,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: HumanDuration,
    /// A run's lease is its timeout plus this; a fire whose worker died runs again after it.
    pub lease_grace: HumanDuration,
    /// How often finished offsets are committed (and always at the end of a drain).
    pub commit_interval: HumanDuration,
    /// Finished attempts kept per job for `GET /v1/jobs/{id}` (0 to 100; 0 keeps none).
    pub attempts_kept: usize,
}

/// `[replayer]`: retry drain and the DLQ API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayerOptions {
    /// Consumer group draining the retry topic.
    pub group_id: String,
    /// DLQ HTTP API (`sked dlq ...`).
    pub listen_addr: SocketAddr,
    /// Most replays of one dead letter; further replays skip it.
    pub max_replays: u32,
    /// Default replay rate, records per second.
    pub replay_rate: u32,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: HumanDuration,
    /// Most dead letters the DLQ index holds; past it the oldest leave the index (not the
    /// topic) and answers say the index is incomplete.
    pub index_max_letters: u64,
}

/// `[scheduler]`: the firing loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerOptions {
    /// Most jobs claimed from one shard in one step.
    pub claim_batch: usize,
    /// How long a claimed fire may stay unacknowledged before another scheduler fires it.
    pub lease: HumanDuration,
    /// Longest sleep between two looks at the due index (a backstop to wake-ups).
    pub poll_interval: HumanDuration,
    /// A recurring fire later than this is a misfire and follows the job's misfire policy.
    pub misfire_threshold: HumanDuration,
    /// Concurrent firing loops per process; each owns the shards `s` with `s % loops == i`.
    pub loops: u16,
    /// A due job whose payload is sealed with a key that is not configured cannot be fired;
    /// it stays claimed this long (held, never dropped), then is claimed again, until its key
    /// is configured.
    pub unknown_key_hold: HumanDuration,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: HumanDuration,
}

/// `[log]`: how services log. The level comes from `RUST_LOG` (default `info`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOptions {
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[kafka]`: how to reach the brokers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOptions {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// `client.id` prefix; the service name is appended.
    pub client_id: String,
    /// A partition of a consumed topic with lag whose group's committed offset has not moved
    /// for this long is reported stalled (kafka/stall.rs); `0s` turns the check off.
    #[serde(default = "default_stall_after")]
    pub stall_after: HumanDuration,
    /// Any librdkafka property, passed through unchanged.
    pub rdkafka: BTreeMap<String, String>,
    /// librdkafka properties whose value is read from a file (a mounted Secret), e.g.
    /// `"sasl.password" = "/etc/sked/kafka/password"`; a property may not be in both tables.
    #[serde(default)]
    pub rdkafka_files: BTreeMap<String, PathBuf>,
    /// The values read from `rdkafka_files` when the configuration loaded.
    #[serde(skip)]
    pub rdkafka_secrets: BTreeMap<String, Secret>,
}

fn default_stall_after() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(120))
}

impl KafkaOptions {
    /// Every librdkafka property to set: `rdkafka`, then the values read from
    /// `rdkafka_files`.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rdkafka
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.rdkafka_secrets
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose())),
            )
    }
}

/// `[redis]`: connection and key layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisOptions {
    /// `redis://` or `rediss://` URL; with `cluster`, seed nodes' URLs, comma separated.
    pub url: String,
    /// Talk to a Redis Cluster (slots, `MOVED`/`ASK` redirects) instead of one server.
    pub cluster: bool,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Number of due-index shards; fixed for the life of an installation.
    pub shards: u16,
    /// Lifetime of idempotency keys and finished job records.
    pub idempotency_ttl: HumanDuration,
    /// Password (`AUTH`) for every server of `url`, instead of one inside the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding `password` (a mounted Secret); not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// `[topics]`: topic names and how `sked topics create` creates them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsOptions {
    /// Schedule requests in.
    pub ingest: String,
    /// Fired jobs out (unless the app names its own topic).
    pub due: String,
    /// Retries waiting for their time.
    pub retry: String,
    /// Dead letters.
    pub dlq: String,
    /// One record per mutating API call (who, scope, tenant, action, target, outcome).
    pub audit: String,
    /// Partitions of topics created by sked.
    pub partitions: i32,
    /// Replication factor of topics created by sked.
    pub replication_factor: i32,
}

/// `[limits]`: what requests are accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOptions {
    /// Largest accepted request, in bytes.
    pub max_request_bytes: usize,
    /// Furthest accepted first fire, from now.
    pub max_horizon: HumanDuration,
}

/// `[ingest]`: the ingest consumer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestOptions {
    /// Consumer group id.
    pub group_id: String,
    /// Most records in one batch.
    pub batch_max: usize,
    /// How long a batch waits for more records after its first.
    pub batch_linger: HumanDuration,
    /// Bound on the drain after SIGTERM.
    pub drain_timeout: HumanDuration,
    /// More topics of schedule requests besides `topics.ingest`; a name starting with `^` is
    /// a regular expression (librdkafka's subscription syntax).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Tenant of a request from a topic named `{tenant}_{app}_scheduler_in` that names none:
    /// the part of the topic name before its first `_`.
    #[serde(default)]
    pub tenant_from_topic_name: bool,
    /// Tenant of requests that name none, by the topic they came on (wins over
    /// `tenant_from_topic_name`).
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
}

impl IngestOptions {
    /// The tenant of a request on `topic` that names none.
    pub fn tenant_of_topic(&self, topic: &str) -> Option<String> {
        if let Some(tenant) = self.tenants.get(topic) {
            return Some(tenant.clone());
        }
        if !self.tenant_from_topic_name {
            return None;
        }
        let rest = topic.strip_suffix("_scheduler_in")?;
        let (tenant, app) = rest.split_once('_')?;
        (!app.is_empty() && crate::request::check_tenant(tenant).is_ok()).then(|| tenant.to_owned())
    }
}

/// `[http]`: REST listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    /// `host:port` to listen on.
    pub listen_addr: SocketAddr,
}

/// `[admin]`: health and metrics listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminOptions {
    /// `host:port` to listen on.
    pub listen_addr: SocketAddr,
}

/// `[apps.<name>]`: one registered app.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppOptions {
    /// `http`, `kafka`, or the name of a custom handler.
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Target URL of the `http` handler.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP method of the `http` handler (default `POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// Extra request headers of the `http` handler.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extra request headers whose value is read from a file (a mounted Secret), e.g.
    /// `Authorization = "/etc/sked/hook-token"`; a header may not be in both tables.
    #[serde(default)]
    pub header_files: BTreeMap<String, PathBuf>,
    /// The values read from `header_files` when the configuration loaded.
    #[serde(skip)]
    pub header_secrets: BTreeMap<String, Secret>,
    /// Lets a job name its own URL in the label `sked.url` (`http` handler). Off by default:
    /// whoever can schedule a job could otherwise make the worker call any address.
    #[serde(default)]
    pub allow_job_url: bool,
    /// Topic the `kafka` handler produces the raw payload to.
    #[serde(default)]
    pub target_topic: Option<String>,
    /// Label whose value is the record key of the `kafka` handler (default: the job id).
    #[serde(default)]
    pub key_label: Option<String>,
    /// Due-topic override for this app's fired jobs.
    #[serde(default)]
    pub topic: Option<String>,
    /// Per-run timeout.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Default retry policy of this app's jobs.
    #[serde(default)]
    pub retry: Option<AppRetryOptions>,
    /// Value format of this app's fires: `sked` (the envelope) or `infinite_scheduler`.
    #[serde(default)]
    pub envelope: crate::envelope::Format,
    /// Token bucket bounding how often this app's handler starts, per worker process.
    #[serde(default)]
    pub rate_limit: Option<AppRateLimitOptions>,
    /// Stops calling this app's handler while too many of its calls fail transiently.
    #[serde(default)]
    pub circuit_breaker: Option<AppCircuitBreakerOptions>,
}

/// `[apps.<name>.rate_limit]`: a token bucket per app in each worker process (replicas
/// multiply it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRateLimitOptions {
    /// Tokens added per second (> 0).
    pub per_second: f64,
    /// Bucket size: most handler starts at once after a quiet period (default
    /// `ceil(per_second)`).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl AppRateLimitOptions {
    /// `burst`, else `ceil(per_second)`, at least 1.
    pub fn effective_burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| self.per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
            .max(1)
    }
}

/// `[apps.<name>.circuit_breaker]`: opens when the transient-failure rate over `window`
/// reaches `failure_rate` (after `min_calls` calls), for `open_for`; then one trial call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCircuitBreakerOptions {
    /// Share of transient failures (timeouts included) that opens the breaker, in (0, 1].
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    /// Fewest calls in the window before the rate is looked at.
    #[serde(default = "default_min_calls")]
    pub min_calls: u32,
    /// Sliding window the calls are counted over.
    #[serde(default = "default_breaker_period")]
    pub window: HumanDuration,
    /// How long the breaker stays open before a trial call.
    #[serde(default = "default_breaker_period")]
    pub open_for: HumanDuration,
}

fn default_failure_rate() -> f64 {
    0.5
}

fn default_min_calls() -> u32 {
    20
}

fn default_breaker_period() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// `[apps.<name>.retry]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRetryOptions {
    /// Executions in all, the first included.
    pub max_attempts: NonZeroU32,
    /// First backoff.
    pub initial: HumanDuration,
    /// Largest backoff.
    pub max: HumanDuration,
}

fn default_handler() -> String {
    "http".to_owned()
}

impl RedisOptions {
    /// The URLs in `url`: one, or a cluster's seed nodes.
    pub fn urls(&self) -> Vec<&str> {
        split_urls(&self.url)
    }
}

/// Splits a comma-separated list of URLs at the commas that start another URL (`,scheme://`),
/// so a comma inside a URL (a password, a query) stays where it is.
pub fn split_urls(list: &str) -> Vec<&str> {
    let starts_url = |rest: &str| {
        let rest = rest.trim_start();
        rest.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        })
    };
    let mut urls = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(',') {
        if starts_url(&list[i + 1..]) {
            urls.push(list[start..i].trim());
            start = i + 1;
        }
    }
    urls.push(list[start..].trim());
    urls.retain(|u| !u.is_empty());
    urls
}

impl Config {
    /// The topics the workers consume: `worker.topics`, or `topics.due` plus every app's own
    /// topic.
    pub fn worker_topics(&self) -> Vec<String> {
        if !self.worker.topics.is_empty() {
            return self.worker.topics.clone();
        }
        let mut topics = vec![self.topics.due.clone()];
        topics.extend(self.apps.values().filter_map(|a| a.topic.clone()));
        topics.sort();
        topics.dedup();
        topics
    }

    /// The `[calendars.<name>]` tables as a set.
    pub fn calendar_set(&self) -> crate::schedule::Calendars {
        let mut set = crate::schedule::Calendars::new();
        for (name, calendar) in &self.calendars {
            set.insert(name.clone(), calendar.clone());
        }
        set
    }

    /// Problems that serde cannot see: ranges and relations between keys.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, what: &str| {
            if !ok {
                problems.push(format!("`{key}`: {what}"));
            }
        };
        check(
            !self.kafka.brokers.trim().is_empty(),
            "kafka.brokers",
            "must name at least one broker",
        );
        check(
            self.worker.attempts_kept <= ATTEMPTS_KEPT_MAX,
            "worker.attempts_kept",
            "must be at most 100",
        );
        let urls = self.redis.urls();
        check(!urls.is_empty(), "redis.url", "must name a Redis server");
        check(
            urls.iter()
                .all(|u| u.starts_with("redis://") || u.starts_with("rediss://")),
            "redis.url",
            "must start with redis:// or rediss://",
        );
        check(
            self.redis.cluster || urls.len() <= 1,
            "redis.url",
            "names several servers, which needs `redis.cluster = true`",
        );
        check(
            urls.iter().all(|u| u.starts_with("rediss://"))
                || urls.iter().all(|u| u.starts_with("redis://")),
            "redis.url",
            "mixes redis:// and rediss:// (cluster nodes share one TLS setting)",
        );
        // Without `server` (the CLI) there is no Redis client to parse URLs with.
        #[cfg(feature = "server")]
        for url in &urls {
            match redis::IntoConnectionInfo::into_connection_info(*url) {
                Err(e) => check(
                    false,
                    "redis.url",
                    &format!(
                        "is not a Redis URL: {}",
                        e.detail().unwrap_or("unparseable")
                    ),
                ),
                Ok(info) => check(
                    !self.redis.cluster || info.redis.db == 0,
                    "redis.url",
                    "selects a database other than 0, which a Redis Cluster does not have",
                ),
            }
        }
        self.console.validate(&mut check);
        check(
            (1000..=100_000_000).contains(&self.replayer.index_max_letters),
            "replayer.index_max_letters",
            "must be between 1000 and 100000000",
        );
        for (name, calendar) in &self.calendars {
            if let Err(why) = crate::schedule::check_calendar_name(name) {
                check(false, &format!("calendars.{name}"), &why);
            }
            for why in calendar.problems() {
                check(false, &format!("calendars.{name}"), &why);
            }
        }
        for (topic, tenant) in &self.ingest.tenants {
            if let Err(why) = crate::request::check_tenant(tenant) {
                check(false, &format!("ingest.tenants.{topic}"), &why);
            }
        }
        check(
            self.ingest.topics.iter().all(|t| !t.trim().is_empty()),
            "ingest.topics",
            "must not contain an empty topic name",
        );
        // librdkafka's own check, here so that a bad property stops the process with the
        // others (exit 64) and without its value: librdkafka's error (and `KafkaError`'s
        // Display) quote the value, which may be a secret (`sasl.pasword = …` with a typo).
        // A NUL byte (a TOML `\u0000`) cannot reach librdkafka at all: without this it loaded
        // and the first client failed with "FFI null error", naming no key.
        for (key, value) in self.kafka.properties() {
            let mut probe = rdkafka::ClientConfig::new();
            probe.set(key, value);
            let desc = match probe.create_native_config() {
                Err(rdkafka::error::KafkaError::ClientConfig(_, desc, _, _))
                    if value.is_empty() =>
                {
                    desc
                }
                Err(rdkafka::error::KafkaError::ClientConfig(_, desc, _, _)) => {
                    desc.replace(value, super::REDACTED)
                }
                Err(rdkafka::error::KafkaError::Nul(_)) => {
                    "the property name or value contains a NUL byte".to_owned()
                }
                _ => continue,
            };
            let table = if self.kafka.rdkafka_secrets.contains_key(key) {
                "rdkafka_files"
            } else {
                "rdkafka"
            };
            check(false, &format!("kafka.{table}.{key}"), &desc);
        }
        check(
            self.redis.password.is_none() || !urls.iter().any(|u| url_has_password(u)),
            "redis.password",
            "is given, and `redis.url` carries a password too; give one",
        );
        self.encryption.check(&mut check);
        check(
            !self.redis.key_prefix.is_empty(),
            "redis.key_prefix",
            "must not be empty",
        );
        check(
            !self.redis.key_prefix.contains(['{', '}']),
            "redis.key_prefix",
            "must not contain `{` or `}` (they would break Redis Cluster hash tags)",
        );
        check(
            (1..=4096).contains(&self.redis.shards),
            "redis.shards",
            "must be between 1 and 4096",
        );
        check(
            !self.redis.idempotency_ttl.get().is_zero(),
            "redis.idempotency_ttl",
            "must be positive",
        );
        for (key, topic) in [
            ("topics.ingest", &self.topics.ingest),
            ("topics.due", &self.topics.due),
            ("topics.retry", &self.topics.retry),
            ("topics.dlq", &self.topics.dlq),
            ("topics.audit", &self.topics.audit),
        ] {
            check(
                valid_topic(topic),
                key,
                "must be a Kafka topic name (1-249 of [a-zA-Z0-9._-])",
            );
        }
        check(
            self.topics.partitions >= 1,
            "topics.partitions",
            "must be at least 1",
        );
        check(
            self.topics.replication_factor >= 1,
            "topics.replication_factor",
            "must be at least 1",
        );
        check(
            self.limits.max_request_bytes >= 64,
            "limits.max_request_bytes",
            "must be at least 64",
        );
        check(
            !self.ingest.group_id.is_empty(),
            "ingest.group_id",
            "must not be empty",
        );
        check(
            (1..=100_000).contains(&self.ingest.batch_max),
            "ingest.batch_max",
            "must be between 1 and 100000",
        );
        for (name, app) in &self.apps {
            let key = format!("apps.{name}.topic");
            if let Some(topic) = &app.topic {
                check(valid_topic(topic), &key, "must be a Kafka topic name");
            }
            if app.handler == "http" && app.url.is_none() {
                check(
                    false,
                    &format!("apps.{name}.url"),
                    "is required when handler = \"http\"",
                );
            }
            if let Some(retry) = &app.retry {
                check(
                    retry.initial <= retry.max,
                    &format!("apps.{name}.retry"),
                    "initial must not exceed max",
                );
            }
            if let Some(limit) = &app.rate_limit {
                check(
                    limit.per_second.is_finite() && limit.per_second > 0.0,
                    &format!("apps.{name}.rate_limit.per_second"),
                    "must be a positive number",
                );
                check(
                    limit.burst != Some(0),
                    &format!("apps.{name}.rate_limit.burst"),
                    "must be at least 1",
                );
            }
            if let Some(breaker) = &app.circuit_breaker {
                check(
                    breaker.failure_rate > 0.0 && breaker.failure_rate <= 1.0,
                    &format!("apps.{name}.circuit_breaker.failure_rate"),
                    "must be in (0, 1]",
                );
                check(
                    breaker.min_calls >= 1,
                    &format!("apps.{name}.circuit_breaker.min_calls"),
                    "must be at least 1",
                );
                for (key, value) in [("window", breaker.window), ("open_for", breaker.open_for)] {
                    check(
                        !value.get().is_zero(),
                        &format!("apps.{name}.circuit_breaker.{key}"),
                        "must be positive",
                    );
                }
            }
        }
        self.auth.validate(&mut problems);
        self.quotas.validate(&mut problems);
        self.global_limits.validate(&mut problems);
        problems
    }

    /// The registered app names, or `None` when no registry is configured.
    pub fn app_registry(&self) -> Option<std::collections::BTreeSet<String>> {
        (!self.apps.is_empty()).then(|| self.apps.keys().cloned().collect())
    }
}

impl EncryptionOptions {
    /// The problems of `[encryption]`, through `check(ok, key, what)`.
    fn check(&self, check: &mut impl FnMut(bool, &str, &str)) {
        for id in self.keys.keys() {
            check(
                valid_key_id(id),
                &format!("encryption.keys.{id}"),
                "a key id is 1-64 of [A-Za-z0-9_.-]",
            );
        }
        if self.enabled {
            check(
                !self.current_key.is_empty(),
                "encryption.current_key",
                "is required when `encryption.enabled = true`",
            );
            check(
                self.current_key.is_empty() || self.keys.contains_key(&self.current_key),
                "encryption.current_key",
                &format!(
                    "names `{}`, which is not in `encryption.keys`",
                    self.current_key
                ),
            );
        }
    }
}

/// A key id: 1-64 of `[A-Za-z0-9_.-]` (it is written into every sealed record).
pub fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// True when a `scheme://user:password@host` URL carries a password.
fn url_has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| {
            userinfo
                .split_once(':')
                .is_some_and(|(_, password)| !password.is_empty())
        })
}

fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}
