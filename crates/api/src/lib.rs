//! sked-api: the request and response types of every sked HTTP endpoint, shared by the
//! services (which serve them), the `sked` CLI and any console (which call them).
//!
//! No IO: only serde types, the pure parsers of the query-string and selector forms, the
//! OpenAPI 3.1 document ([`openapi::openapi`], committed as `docs/openapi.json`) and the JSON
//! Schema of schedule requests ([`request::schema`], committed as
//! `docs/schedule-request.schema.json`).
//!
//! Modules: [`error`] (the one error shape), [`calendars`] (exclusion calendars), [`jobs`] (jobs, their verbs, app and tenant
//! pauses), [`query`] (the list filter: query string and selector forms), [`ops`] (bulk
//! operations), [`stats`] (counts and schedule previews), [`dlq`] (the replayer's DLQ API),
//! [`request`] (schema-only types of the schedule request), [`openapi`].

pub mod calendars;
pub mod dlq;
pub mod error;
pub mod jobs;
pub mod openapi;
pub mod ops;
pub mod query;
pub mod request;
pub mod stats;

pub use error::{ErrorBody, ErrorDetail};
