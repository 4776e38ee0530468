//! `[auth]` (who may call the HTTP APIs) and `[quotas]` (how much each tenant and app may
//! submit). The admin port (`/healthz`, `/readyz`, `/metrics`) is never authenticated.

use std::{collections::BTreeMap, fmt, path::PathBuf, str::FromStr};

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// What a token may do. `admin` implies every other scope.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
)]
pub enum Scope {
    /// List, describe and count jobs, operations, pauses and calendars; preview schedules.
    #[serde(rename = "jobs:read")]
    JobsRead,
    /// Submit, replace, cancel, pause, resume, trigger, backfill and reschedule jobs.
    #[serde(rename = "jobs:write")]
    JobsWrite,
    /// Bulk operations, and pausing or resuming a whole app or tenant.
    #[serde(rename = "ops:write")]
    OpsWrite,
    /// Browse dead letters and replays.
    #[serde(rename = "dlq:read")]
    DlqRead,
    /// Start replays of dead letters.
    #[serde(rename = "dlq:replay")]
    DlqReplay,
    /// Everything, including exclusion calendars.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// The scope's name as written in config and tokens (`jobs:read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::OpsWrite => "ops:write",
            Scope::DlqRead => "dlq:read",
            Scope::DlqReplay => "dlq:replay",
            Scope::Admin => "admin",
        }
    }

    /// Whether the scope only reads.
    pub fn reads(self) -> bool {
        matches!(self, Scope::JobsRead | Scope::DlqRead)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Scope as strum::IntoEnumIterator>::iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{s}` (jobs:read, jobs:write, ops:write, dlq:read, dlq:replay, admin)"
                )
            })
    }
}

/// `[auth]`: bearer tokens on every HTTP API (jobs, operations, calendars, DLQ).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthOptions {
    /// Whether calls need a bearer token. Off only when set to `false`, and then every
    /// service with an API logs a warning at start.
    pub enabled: bool,
    /// Static API tokens by name (the name is the actor in audit records).
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenOptions>,
    /// A TOML file of more tokens, the same tables without the `auth.tokens.` prefix
    /// (`[ci] hash = "sha256:…"`), e.g. a mounted Kubernetes Secret. Read at start.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// OIDC/JWT bearer tokens, checked offline against a JWKS.
    #[serde(default)]
    pub jwt: Option<JwtOptions>,
}

/// `[auth.tokens.<name>]`: one static API token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenOptions {
    /// `sha256:<64 hex digits>` of the token (`sked auth new-token` prints one); the token
    /// itself is never configured.
    pub hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// The tenants it acts for; empty = every tenant (and jobs without one).
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// `[auth.jwt]`: OIDC/JWT bearer tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtOptions {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Accepted `aud` values; a token must name one.
    pub audience: Vec<String>,
    /// A JWKS document on disk (re-read every `refresh`).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL (fetched at start, every `refresh`, and at most every 30 s when a token
    /// names an unknown `kid`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the key set is read again (key rotation).
    #[serde(default = "default_refresh")]
    pub refresh: HumanDuration,
    /// Accepted signature algorithms: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384,
    /// EdDSA. `none` and the HMAC family are never accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: HumanDuration,
    /// The claim holding scopes: a space-separated string (OAuth `scope`) or an array.
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Claim values that are not sked scope names, mapped to sked scopes
    /// (`"sked-operators" = ["admin"]`). Unknown values are ignored.
    #[serde(default)]
    pub scope_map: BTreeMap<String, Vec<Scope>>,
    /// The claim holding the tenants a token acts for (a string or an array).
    #[serde(default = "default_tenants_claim")]
    pub tenants_claim: String,
    /// Refuse tokens without the tenants claim; when `false` they act for every tenant.
    #[serde(default)]
    pub require_tenants: bool,
}

fn default_refresh() -> HumanDuration {
    std::time::Duration::from_secs(300).into()
}

fn default_leeway() -> HumanDuration {
    std::time::Duration::from_secs(30).into()
}

fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(String::from).to_vec()
}

fn default_scopes_claim() -> String {
    "scope".into()
}

fn default_tenants_claim() -> String {
    "sked_tenants".into()
}

/// The algorithms `auth.jwt.algorithms` may name.
pub const JWT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The SHA-256 of a token, as configured: `sha256:<hex>`.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a token hash: `sha256:` and 64 lowercase hex digits.
pub fn check_token_hash(hash: &str) -> Result<(), String> {
    let hex = hash
        .strip_prefix("sha256:")
        .ok_or("must start with `sha256:` (the SHA-256 of the token, as hex)")?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err("must be `sha256:` and 64 lowercase hex digits".into())
    }
}

impl AuthOptions {
    /// Problems that serde cannot see.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for (name, token) in &self.tokens {
            token.validate(&format!("auth.tokens.{name}"), problems);
        }
        if let Some(jwt) = &self.jwt {
            let mut check = |ok: bool, key: &str, what: &str| {
                if !ok {
                    problems.push(format!("`auth.jwt.{key}`: {what}"));
                }
            };
            check(!jwt.issuer.trim().is_empty(), "issuer", "must not be empty");
            check(
                !jwt.audience.is_empty(),
                "audience",
                "must name at least one audience",
            );
            check(
                jwt.jwks_file.is_some() != jwt.jwks_url.is_some(),
                "jwks_file",
                "exactly one of `auth.jwt.jwks_file` and `auth.jwt.jwks_url` must be set",
            );
            if let Some(url) = &jwt.jwks_url {
                check(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "jwks_url",
                    "must be an http:// or https:// URL",
                );
            }
            check(
                !jwt.algorithms.is_empty(),
                "algorithms",
                "must name at least one algorithm",
            );
            for alg in &jwt.algorithms {
                check(
                    JWT_ALGORITHMS.contains(&alg.as_str()),
                    "algorithms",
                    &format!(
                        "`{alg}` is not accepted (one of {})",
                        JWT_ALGORITHMS.join(", ")
                    ),
                );
            }
            check(
                jwt.refresh.0 >= std::time::Duration::from_secs(1),
                "refresh",
                "must be at least 1s",
            );
        }
    }
}

impl TokenOptions {
    /// Problems of the token at `key`.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(why) = check_token_hash(&self.hash) {
            problems.push(format!("`{key}.hash`: {why}"));
        }
        if self.scopes.is_empty() {
            problems.push(format!("`{key}.scopes`: must name at least one scope"));
        }
        for tenant in &self.tenants {
            if let Err(why) = crate::request::check_tenant(tenant) {
                problems.push(format!("`{key}.tenants`: `{tenant}`: {why}"));
            }
        }
    }
}

/// `[quotas]`: what each tenant and app may submit, enforced at ingest (Kafka and REST).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasOptions {
    /// Quota of every tenant not listed in `quotas.tenants`.
    #[serde(default)]
    pub default_tenant: Option<QuotaOptions>,
    /// Quotas by tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, QuotaOptions>,
    /// Quotas by app.
    #[serde(default)]
    pub apps: BTreeMap<String, QuotaOptions>,
}

/// One quota; a missing key is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOptions {
    /// Most pending jobs (scheduled, paused, held, firing).
    #[serde(default)]
    pub max_pending: Option<u64>,
    /// Most new submissions per second (updates and duplicates count too), shared by every
    /// ingest replica.
    #[serde(default)]
    pub submit_rate: Option<u32>,
}

impl QuotasOptions {
    /// Whether any quota is configured.
    pub fn any(&self) -> bool {
        self.default_tenant.is_some() || !self.tenants.is_empty() || !self.apps.is_empty()
    }

    /// The quota of `tenant`.
    pub fn tenant(&self, tenant: &str) -> Option<&QuotaOptions> {
        self.tenants.get(tenant).or(self.default_tenant.as_ref())
    }

    /// Problems that serde cannot see.
    pub fn validate(&self, problems: &mut Vec<String>) {
        let mut one = |key: String, q: &QuotaOptions| {
            if q.max_pending.is_none() && q.submit_rate.is_none() {
                problems.push(format!(
                    "`{key}`: sets neither `max_pending` nor `submit_rate`"
                ));
            }
            if q.submit_rate == Some(0) {
                problems.push(format!(
                    "`{key}.submit_rate`: must be at least 1 (leave it out for no limit)"
                ));
            }
        };
        if let Some(q) = &self.default_tenant {
            one("quotas.default_tenant".into(), q);
        }
        for (name, q) in &self.tenants {
            one(format!("quotas.tenants.{name}"), q);
        }
        for (name, q) in &self.apps {
            one(format!("quotas.apps.{name}"), q);
        }
        for name in self.tenants.keys() {
            if let Err(why) = crate::request::check_tenant(name) {
                problems.push(format!("`quotas.tenants.{name}`: {why}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_their_names() {
        for scope in <Scope as strum::IntoEnumIterator>::iter() {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(
                serde_json::to_string(&scope).unwrap_or_default(),
                format!("\"{scope}\"")
            );
        }
        assert!("jobs:delete".parse::<Scope>().is_err());
    }

    #[test]
    fn token_hashes_are_checked() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert!(check_token_hash(&good).is_ok());
        assert!(check_token_hash(&good.to_uppercase()).is_err());
        assert!(check_token_hash("plain-token").is_err());
        assert!(check_token_hash("sha256:abc").is_err());
    }
}
