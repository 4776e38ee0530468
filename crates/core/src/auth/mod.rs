//! Who is calling: bearer tokens on the HTTP APIs (`[auth]`), and the audit record of every
//! mutating call.
//!
//! - [`Authenticator`] turns an `Authorization: Bearer …` header into a [`Principal`]: a
//!   static token (its SHA-256 is looked up among `auth.tokens`) or a JWT (checked offline
//!   against a JWKS, see [`jwt`]).
//! - [`gate`] is the axum middleware every API router runs: 401 without a valid token, 403
//!   without the route's scope, then the handler with the principal as an extension, then
//!   the audit record of a mutating call ([`audit`]).
//! - Tenant confinement is the handlers' part, through [`Principal::sees`] and
//!   [`Principal::confine`]: another tenant's job is 404, never 403.

pub mod audit;
pub mod gate;
pub mod jwt;

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

pub use crate::config::token_hash;
use crate::config::{AuthOptions, Scope, TokenOptions};

pub use audit::{AuditNote, Auditor};
pub use gate::{Gate, Rule, gate};

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::AsRefStr)]
#[strum(serialize_all = "snake_case")]
pub enum Via {
    /// A static API token.
    Token,
    /// A JWT.
    Jwt,
    /// Nothing: `auth.enabled = false`.
    Open,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the token's name, or `jwt:<sub>`; `anonymous` when auth is off.
    pub actor: String,
    /// How it was authenticated.
    pub via: Via,
    scopes: BTreeSet<Scope>,
    /// `None`: every tenant (and jobs without one).
    tenants: Option<BTreeSet<String>>,
}

/// Why a tenant-confined call cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Confine {
    /// The call names a tenant the caller does not act for.
    #[error("this token does not act for tenant `{0}`")]
    Foreign(String),
    /// The caller acts for several tenants and the call names none.
    #[error("this token acts for several tenants ({0}): name one with `tenant`")]
    Ambiguous(String),
}

impl Principal {
    /// The caller of an API with auth off: every scope, every tenant.
    pub fn open() -> Self {
        Self {
            actor: "anonymous".into(),
            via: Via::Open,
            scopes: [Scope::Admin].into(),
            tenants: None,
        }
    }

    /// A caller with these scopes and tenants (`None` or empty: every tenant).
    pub fn new(
        actor: impl Into<String>,
        via: Via,
        scopes: impl IntoIterator<Item = Scope>,
        tenants: Option<BTreeSet<String>>,
    ) -> Self {
        Self {
            actor: actor.into(),
            via,
            scopes: scopes.into_iter().collect(),
            tenants: tenants.filter(|t| !t.is_empty()),
        }
    }

    /// Whether the caller has `scope` (`admin` has every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// The caller's scopes.
    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().copied()
    }

    /// The tenants the caller is confined to; `None` = every tenant.
    pub fn tenants(&self) -> Option<&BTreeSet<String>> {
        self.tenants.as_ref()
    }

    /// Whether the caller may see a job of `tenant` (`None`: a job without a tenant, which
    /// only unconfined callers see).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match &self.tenants {
            None => true,
            Some(set) => tenant.is_some_and(|t| set.contains(t)),
        }
    }

    /// The tenant a listing, a selector or a submission is confined to, given the one it
    /// names: the named one if the caller acts for it, the caller's only tenant when it names
    /// none, unchanged for an unconfined caller.
    pub fn confine(&self, named: Option<&str>) -> Result<Option<String>, Confine> {
        let Some(set) = &self.tenants else {
            return Ok(named.map(str::to_owned));
        };
        match named {
            Some(t) if set.contains(t) => Ok(Some(t.to_owned())),
            Some(t) => Err(Confine::Foreign(t.to_owned())),
            None if set.len() == 1 => Ok(set.iter().next().cloned()),
            None => Err(Confine::Ambiguous(
                set.iter().cloned().collect::<Vec<_>>().join(", "),
            )),
        }
    }
}

/// Why a call is not authenticated (answered 401). The messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    #[error("this API needs a bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// A token that is not accepted, and why.
    #[error("the bearer token is not accepted: {0}")]
    Invalid(String),
}

/// Problems reading the auth configuration at start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `auth.tokens_file` cannot be read or parsed.
    #[error("`auth.tokens_file` {path}: {why}")]
    TokensFile { path: String, why: String },
    /// The JWKS cannot be loaded.
    #[error("`auth.jwt`: {0}")]
    Jwks(String),
}

/// Checks bearer tokens.
#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    /// Static tokens by `sha256:<hex>`.
    tokens: HashMap<String, Arc<Principal>>,
    jwt: Option<Arc<jwt::Verifier>>,
    open: Arc<Principal>,
}

impl Authenticator {
    /// The authenticator of `options`: reads `tokens_file` and loads the JWKS (a JWKS URL
    /// that cannot be fetched yet is retried by [`Self::refresh`], and JWTs are refused
    /// until it loads).
    pub async fn new(options: &AuthOptions) -> Result<Self, Error> {
        let mut all: Vec<(String, TokenOptions)> = options
            .tokens
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(path) = &options.tokens_file {
            all.extend(read_tokens_file(path)?);
        }
        let mut tokens = HashMap::new();
        for (name, token) in all {
            let tenants = (!token.tenants.is_empty())
                .then(|| token.tenants.iter().cloned().collect::<BTreeSet<_>>());
            let principal = Principal::new(name, Via::Token, token.scopes.iter().copied(), tenants);
            tokens.insert(token.hash.clone(), Arc::new(principal));
        }
        let jwt = match &options.jwt {
            Some(jwt) => Some(Arc::new(jwt::Verifier::new(jwt.clone()).await?)),
            None => None,
        };
        Ok(Self {
            enabled: options.enabled,
            tokens,
            jwt,
            open: Arc::new(Principal::open()),
        })
    }

    /// An authenticator that lets every call through (auth off), for tools and tests.
    pub fn open() -> Self {
        Self {
            enabled: false,
            tokens: HashMap::new(),
            jwt: None,
            open: Arc::new(Principal::open()),
        }
    }

    /// Whether calls need a token.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether any credential (token or JWT issuer) is configured.
    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// The JWT verifier, whose key set [`jwt::Verifier::refresh_loop`] keeps fresh.
    pub fn jwt(&self) -> Option<Arc<jwt::Verifier>> {
        self.jwt.clone()
    }

    /// The caller of a request with this `Authorization` header value.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Arc<Principal>, Denied> {
        if !self.enabled {
            return Ok(self.open.clone());
        }
        let value = authorization.ok_or(Denied::Missing)?;
        let (kind, token) = value.trim().split_once(' ').ok_or(Denied::Missing)?;
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(Denied::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(Denied::Missing);
        }
        if let Some(p) = self.tokens.get(&token_hash(token)) {
            return Ok(p.clone());
        }
        match &self.jwt {
            // A JWT has three dot-separated parts; anything else is an unknown static token.
            Some(jwt) if token.split('.').count() == 3 => jwt.verify(token).await.map(Arc::new),
            _ => Err(Denied::Invalid("unknown token".into())),
        }
    }
}

fn read_tokens_file(path: &std::path::Path) -> Result<Vec<(String, TokenOptions)>, Error> {
    let fail = |why: String| Error::TokensFile {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let table: std::collections::BTreeMap<String, TokenOptions> =
        toml::from_str(&text).map_err(|e| fail(e.message().to_owned()))?;
    let mut problems = Vec::new();
    for (name, token) in &table {
        token.validate(name, &mut problems);
    }
    if !problems.is_empty() {
        return Err(fail(problems.join("; ")));
    }
    Ok(table.into_iter().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn confined(tenants: &[&str]) -> Principal {
        Principal::new(
            "t",
            Via::Token,
            [Scope::JobsRead],
            Some(tenants.iter().map(|t| t.to_string()).collect()),
        )
    }

    #[test]
    fn a_confined_caller_sees_only_its_tenants() {
        let p = confined(&["acme"]);
        assert!(p.sees(Some("acme")));
        assert!(!p.sees(Some("globex")));
        assert!(!p.sees(None));
        assert!(Principal::open().sees(None));
        assert_eq!(p.confine(None), Ok(Some("acme".into())));
        assert_eq!(p.confine(Some("acme")), Ok(Some("acme".into())));
        assert_eq!(
            p.confine(Some("globex")),
            Err(Confine::Foreign("globex".into()))
        );
        let two = confined(&["a", "b"]);
        assert!(matches!(two.confine(None), Err(Confine::Ambiguous(_))));
        assert_eq!(Principal::open().confine(None), Ok(None));
    }

    #[test]
    fn admin_has_every_scope() {
        let admin = Principal::new("a", Via::Token, [Scope::Admin], None);
        assert!(admin.allows(Scope::DlqReplay));
        let reader = Principal::new("r", Via::Token, [Scope::JobsRead], None);
        assert!(!reader.allows(Scope::JobsWrite));
        assert!(reader.allows(Scope::JobsRead));
    }

    #[tokio::test]
    async fn static_tokens_are_found_by_hash_and_never_by_value() {
        let mut options = AuthOptions {
            enabled: true,
            tokens: Default::default(),
            tokens_file: None,
            jwt: None,
        };
        options.tokens.insert(
            "ci".into(),
            TokenOptions {
                hash: token_hash("s3cret-token"),
                scopes: vec![Scope::JobsWrite],
                tenants: vec![],
            },
        );
        let auth = Authenticator::new(&options).await.unwrap();
        let p = auth
            .authenticate(Some("Bearer s3cret-token"))
            .await
            .unwrap();
        assert_eq!(p.actor, "ci");
        assert_eq!(auth.authenticate(None).await, Err(Denied::Missing));
        assert_eq!(
            auth.authenticate(Some("Basic czNjcmV0")).await,
            Err(Denied::Missing)
        );
        let wrong = auth.authenticate(Some("Bearer s3cret-tokeN")).await;
        assert!(matches!(wrong, Err(Denied::Invalid(_))));
        // The hash itself is not a token.
        let hash = token_hash("s3cret-token");
        assert!(
            auth.authenticate(Some(&format!("Bearer {hash}")))
                .await
                .is_err()
        );
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(crate::config::check_token_hash(&token_hash("x")).is_ok());
    }
}
