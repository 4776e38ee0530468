//! Configuration: the option structs every service reads, and the layered loader
//! (embedded defaults → optional TOML file → `SKED_*` environment → `--set` flags).

mod args;
mod auth;
mod duration;
mod global_limits;
mod loader;
mod options;
mod secret;

pub use args::{Args, redact_url};
pub use auth::{
    AuthOptions, JWT_ALGORITHMS, JwtOptions, QuotaOptions, QuotasOptions, Scope, TokenOptions,
    check_token_hash, token_hash,
};
pub use duration::HumanDuration;
pub use global_limits::{ConcurrencyOptions, GlobalLimitsOptions, GlobalRateOptions};
pub use loader::{Error, Layers, Source, load};
pub use options::*;
pub use secret::{KeyMaterial, REDACTED, Secret};
