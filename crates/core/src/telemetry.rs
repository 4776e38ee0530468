//! Logging and tracing setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as
//! text or JSON per `log.format`; plus OpenTelemetry span export over OTLP/HTTP (protobuf)
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, off
//! otherwise. The exporter reads the other standard `OTEL_*` variables itself (headers,
//! timeout); `service.name` is `OTEL_SERVICE_NAME`, else the binary's name.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource, runtime::Tokio, trace::SdkTracerProvider,
    trace::span_processor_with_async_runtime::BatchSpanProcessor,
};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*, registry::LookupSpan};

use crate::config::{LogFormat, LogOptions};

/// Keeps the span exporter alive; [`Guard::shutdown`] flushes it. Dropping it without
/// shutting down loses the spans still batched.
#[derive(Debug, Default)]
#[must_use = "spans are only flushed by Guard::shutdown"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// True when spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every finished span now.
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        }
    }

    /// Flushes and stops the exporter. Call last, after the service's tasks are joined.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(err)) = done {
                eprintln!("otlp span exporter shutdown: {err}");
            }
        }
    }
}

/// Installs the global subscriber; exports spans when the `OTEL_EXPORTER_OTLP_*ENDPOINT`
/// variables say so. Call once, from `main` (see [`crate::runtime::service_main`]).
pub fn init(service: &str, options: &LogOptions) -> Guard {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    init_with(service, options, configured.then_some(None))
}

/// [`init`] with an explicit traces endpoint (the full URL, e.g.
/// `http://127.0.0.1:4318/v1/traces`) instead of the environment: for tests.
pub fn init_with_endpoint(service: &str, options: &LogOptions, endpoint: &str) -> Guard {
    init_with(service, options, Some(Some(endpoint)))
}

/// `export`: `None` off, `Some(None)` endpoint from the environment, `Some(Some(url))` that URL.
fn init_with(service: &str, options: &LogOptions, export: Option<Option<&str>>) -> Guard {
    let (provider, otel) = match export.map(|endpoint| provider(service, endpoint)) {
        None => (None, None),
        Some(Ok(provider)) => {
            let layer = otel_layer(&provider);
            (Some(provider), Some(layer))
        }
        Some(Err(err)) => {
            eprintln!("{service}: OTLP span export disabled: {err:#}");
            (None, None)
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match options.format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    if let Err(err) = installed {
        eprintln!("{service}: tracing subscriber not installed: {err}");
    }
    Guard { provider }
}

/// A tracer provider exporting batches over OTLP/HTTP protobuf to `endpoint`, or to the
/// endpoint of the `OTEL_*` variables when `None`.
pub fn provider(service: &str, endpoint: Option<&str>) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let exporter = builder.build()?;
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| service.to_owned());
    let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build())
}

/// The `tracing` → OpenTelemetry layer of `provider` (for a test's own subscriber).
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("sked"))
}
