//! OIDC/JWT bearer tokens, checked offline against a JWKS (`auth.jwt`).
//!
//! A token is accepted when its header names an algorithm of `auth.jwt.algorithms` (never
//! `none`, never HMAC: the key set holds public keys only) and a `kid` of the key set (a
//! token without `kid` only when the set has one key), its signature verifies, and it
//! carries `exp` (not passed, with `leeway`), `iss` = `issuer` and an `aud` of `audience`.
//! Scopes come from `scopes_claim` (sked scope names, or values mapped by `scope_map`),
//! tenants from `tenants_claim`.
//!
//! The key set is read at start, again every `refresh`, and when a token names an unknown
//! `kid` (at most every 30 s), so a rotation at the issuer is picked up without a restart. A
//! key set that cannot be read keeps the last one loaded (logged).

use std::{
    collections::{BTreeSet, HashMap},
    str::FromStr,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Denied, Error, Principal, Via};
use crate::config::{JwtOptions, Scope};

/// Least time between two key-set reads caused by unknown `kid`s.
const FORCED_REFRESH_GAP: Duration = Duration::from_secs(30);

/// One usable key of the set.
struct Key {
    key: DecodingKey,
    /// The key's own `alg`, when the JWK names one.
    alg: Option<Algorithm>,
}

/// The loaded key set.
#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    /// Keys without a `kid`.
    unnamed: Vec<Key>,
}

impl Keys {
    fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }
}

/// Checks JWTs against the configured key set.
pub struct Verifier {
    options: JwtOptions,
    algorithms: Vec<Algorithm>,
    keys: RwLock<Keys>,
    last_forced: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.options.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier of `options`, with its key set loaded (a `jwks_url` that cannot be fetched
    /// yet is logged and retried; a `jwks_file` that cannot be read is an error).
    pub async fn new(options: JwtOptions) -> Result<Self, Error> {
        let algorithms = options
            .algorithms
            .iter()
            .map(|a| Algorithm::from_str(a).map_err(|_| Error::Jwks(format!("algorithm `{a}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Jwks(format!("http client: {e}")))?;
        let verifier = Self {
            options,
            algorithms,
            keys: RwLock::new(Keys::default()),
            last_forced: tokio::sync::Mutex::new(None),
            http,
        };
        match verifier.load().await {
            Ok(n) => info!(keys = n, issuer = %verifier.options.issuer, "jwks loaded"),
            Err(e) if verifier.options.jwks_url.is_some() => {
                warn!(error = %e, "jwks not loaded yet; JWTs are refused until it loads")
            }
            Err(e) => return Err(Error::Jwks(e)),
        }
        Ok(verifier)
    }

    /// Reads the key set again; returns how many keys it holds.
    pub async fn load(&self) -> Result<usize, String> {
        let text = if let Some(path) = &self.options.jwks_file {
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("jwks_file {}: {e}", path.display()))?
        } else if let Some(url) = &self.options.jwks_url {
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("jwks_url: {}", e.without_url()))?;
            if !response.status().is_success() {
                return Err(format!("jwks_url: HTTP {}", response.status()));
            }
            response
                .text()
                .await
                .map_err(|e| format!("jwks_url: {}", e.without_url()))?
        } else {
            return Err("neither jwks_file nor jwks_url is set".into());
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Keys::default();
        for jwk in &set.keys {
            // Public keys only: an `oct` (shared secret) key would let HMAC tokens in.
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| Algorithm::from_str(&format!("{a:?}")).ok());
            let key = Key { key, alg };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), key);
                }
                None => keys.unnamed.push(key),
            }
        }
        let n = keys.len();
        if n == 0 {
            return Err("the key set holds no usable public key".into());
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(n)
    }

    /// Reloads the key set every `refresh` until `cancel`.
    pub async fn refresh_loop(&self, cancel: CancellationToken) {
        let every = self.options.refresh.0;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.load().await {
                warn!(error = %e, "jwks refresh failed; keeping the keys loaded before");
            }
        }
    }

    /// The caller a JWT stands for.
    pub async fn verify(&self, token: &str) -> Result<Principal, Denied> {
        let claims = self.claims(token).await?;
        self.principal(&claims)
    }

    /// The claims of a JWT whose algorithm, key, signature, `exp`, `nbf`, `iss` and `aud`
    /// pass (the console's check of an OIDC ID token, which then compares its `nonce`).
    pub async fn claims(&self, token: &str) -> Result<serde_json::Map<String, Value>, Denied> {
        let invalid = |why: &str| Denied::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("malformed JWT header (or an algorithm that is never accepted)")
        })?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid("the JWT's algorithm is not accepted"));
        }
        if let Some(kid) = &header.kid
            && !self.has_kid(kid)
        {
            self.forced_reload().await;
            if !self.has_kid(kid) {
                return Err(invalid(
                    "the JWT names a key id (kid) that is not in the key set",
                ));
            }
        }
        let claims = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            let key = match &header.kid {
                Some(kid) => keys.by_kid.get(kid),
                None if keys.len() == 1 => keys.by_kid.values().chain(&keys.unnamed).next(),
                None => None,
            }
            .ok_or_else(|| invalid("the JWT names no key id (kid) and the key set has several"))?;
            if key.alg.is_some_and(|a| a != header.alg) {
                return Err(invalid("the JWT's algorithm is not its key's"));
            }
            let mut validation = Validation::new(header.alg);
            validation.leeway = self.options.leeway.0.as_secs();
            validation.validate_nbf = true;
            validation.set_issuer(&[&self.options.issuer]);
            validation.set_audience(&self.options.audience);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
                .map_err(|e| invalid(reason(e.kind())))?
                .claims
        };
        Ok(claims)
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_kid
            .contains_key(kid)
    }

    async fn forced_reload(&self) {
        let mut last = self.last_forced.lock().await;
        if last.is_some_and(|t| t.elapsed() < FORCED_REFRESH_GAP) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.load().await {
            warn!(error = %e, "jwks reload for an unknown kid failed");
        }
    }

    fn principal(&self, claims: &serde_json::Map<String, Value>) -> Result<Principal, Denied> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let mut scopes = BTreeSet::new();
        for value in strings(claims.get(&self.options.scopes_claim)) {
            if let Ok(scope) = Scope::from_str(&value) {
                scopes.insert(scope);
            }
            if let Some(mapped) = self.options.scope_map.get(&value) {
                scopes.extend(mapped.iter().copied());
            }
        }
        if scopes.is_empty() {
            return Err(Denied::Invalid(format!(
                "the JWT grants no sked scope (claim `{}`)",
                self.options.scopes_claim
            )));
        }
        let tenants = match claims.get(&self.options.tenants_claim) {
            None if self.options.require_tenants => {
                return Err(Denied::Invalid(format!(
                    "the JWT has no `{}` claim",
                    self.options.tenants_claim
                )));
            }
            None => None,
            Some(v) => {
                let set: BTreeSet<String> = strings(Some(v)).into_iter().collect();
                if set.is_empty() {
                    return Err(Denied::Invalid(format!(
                        "the JWT's `{}` claim names no tenant",
                        self.options.tenants_claim
                    )));
                }
                Some(set)
            }
        };
        Ok(Principal::new(
            format!("jwt:{sub}"),
            Via::Jwt,
            scopes,
            tenants,
        ))
    }
}

/// A claim as strings: a space-separated string, or an array of strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the JWT has expired",
        ErrorKind::ImmatureSignature => "the JWT is not valid yet (nbf)",
        ErrorKind::InvalidAudience => "the JWT's audience (aud) is not accepted",
        ErrorKind::InvalidIssuer => "the JWT's issuer (iss) is not accepted",
        ErrorKind::InvalidSignature => "the JWT's signature does not verify",
        ErrorKind::InvalidAlgorithm => "the JWT's algorithm does not match its key",
        ErrorKind::MissingRequiredClaim(_) => "the JWT lacks a required claim (exp, iss, aud)",
        _ => "malformed JWT",
    }
}
