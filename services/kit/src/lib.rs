//! What every ANP service shares: configuration from the environment,
//! telemetry set-up, the mapping of errors to gRPC codes, bearer-token
//! checks, and serving gRPC with health and reflection.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tracing::info;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Reads an environment variable or returns the default.
pub fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Where a service keeps its data: a database, a schema of its own in it, and
/// how many connections it may open.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub schema: String,
    pub pool_size: usize,
}

impl DatabaseConfig {
    /// Reads `ANP_DATABASE_URL`, `schema_var` and `ANP_DATABASE_POOL_SIZE`.
    pub fn from_env(schema_var: &str, default_schema: &str) -> anyhow::Result<Self> {
        Ok(DatabaseConfig {
            url: env_or("ANP_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/anp"),
            schema: env_or(schema_var, default_schema),
            pool_size: env_or("ANP_DATABASE_POOL_SIZE", "16")
                .parse()
                .map_err(|_| anyhow::anyhow!("ANP_DATABASE_POOL_SIZE must be a number"))?,
        })
    }
}

/// Keeps the OpenTelemetry exporter alive; flushes it when dropped.
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {err}");
        }
    }
}

/// Sets up `tracing`: logs to stderr filtered by `RUST_LOG` (default
/// `info`), and spans exported over OTLP/gRPC when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (off otherwise). W3C trace context
/// is the propagation format. Keep the returned value alive in `main`.
pub fn init_tracing(service: &str) -> Telemetry {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    let provider = endpoint.and_then(|endpoint| {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => Some(
                opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(format!("anp-{service}"))
                            .build(),
                    )
                    .build(),
            ),
            Err(err) => {
                eprintln!("telemetry: cannot export to {endpoint}: {err}");
                None
            }
        }
    });
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(format!("anp-{service}")))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(otel_layer)
        .try_init();
    info!(service, "starting");
    Telemetry { provider }
}

/// Reads W3C trace context from HTTP headers or gRPC metadata.
struct HeaderExtractor<'a>(&'a tonic::codegen::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

/// A span whose parent is the trace context carried by `headers`, if any.
pub fn span_with_remote_parent(
    headers: &tonic::codegen::http::HeaderMap,
    span: tracing::Span,
) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
    span
}

/// A span whose parent is a W3C `traceparent` (e.g. stored with an event).
pub fn span_from_traceparent(traceparent: &str, span: tracing::Span) -> tracing::Span {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    if let Ok(value) = traceparent.parse() {
        headers.insert("traceparent", value);
    }
    span_with_remote_parent(&headers, span)
}

/// The W3C `traceparent` of the current span, when tracing is exported.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// A token that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    pub fn new(token: impl Into<String>) -> Self {
        SecretToken(token.into())
    }

    /// Compares in time independent of where the strings differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let expected = self.0.as_bytes();
        let given = candidate.as_bytes();
        if expected.is_empty() || expected.len() != given.len() {
            return false;
        }
        expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretToken(***)")
    }
}

/// Checks `authorization: Bearer <token>` on a gRPC request.
pub fn require_bearer<T>(request: &tonic::Request<T>, token: &SecretToken) -> Result<(), Status> {
    let Some(value) = request.metadata().get("authorization") else {
        return Err(Status::unauthenticated(
            "authorization: missing bearer token",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .unwrap_or("");
    if token.matches(presented.trim()) {
        Ok(())
    } else {
        Err(Status::unauthenticated(
            "authorization: invalid bearer token",
        ))
    }
}

/// The W3C `traceparent` of a request, if the caller sent a well-formed one.
pub fn traceparent<T>(request: &tonic::Request<T>) -> Option<String> {
    let value = request.metadata().get("traceparent")?.to_str().ok()?;
    let parts: Vec<&str> = value.split('-').collect();
    let well_formed = parts.len() == 4
        && parts[0].len() == 2
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && parts
            .iter()
            .all(|part| part.chars().all(|c| c.is_ascii_hexdigit()));
    well_formed.then(|| value.to_owned())
}

/// Who sends a command, and the trace it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub actor: String,
    pub traceparent: Option<String>,
}

impl Caller {
    pub fn of<T>(request: &tonic::Request<T>, actor: &str) -> Self {
        Caller {
            actor: actor.to_owned(),
            traceparent: current_traceparent().or_else(|| traceparent(request)),
        }
    }
}

/// The small shared set of error kinds every service error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Conflict,
    Unauthenticated,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::Conflict => Code::Aborted,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::ResourceExhausted => Code::ResourceExhausted,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::FailedPrecondition => 412,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The kind of a gRPC status received from another service.
    pub fn from_grpc(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::Aborted => ErrorKind::Conflict,
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::ResourceExhausted => ErrorKind::ResourceExhausted,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::Unavailable | Code::DeadlineExceeded => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// Implemented by each service's error enum.
pub trait ServiceError: std::fmt::Display {
    fn kind(&self) -> ErrorKind;

    /// The gRPC status; internal details are logged, not sent.
    fn to_status(&self) -> Status {
        let kind = self.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %self, "internal error");
            return Status::internal("internal error");
        }
        Status::new(kind.grpc_code(), self.to_string())
    }
}

/// Checks a text field: required, at most `max_chars` characters, no
/// control characters. The error names the field.
pub fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(format!(
            "{field}: {count} characters, at most {max_chars} allowed"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(())
}

/// Checks a slug: 2 to 48 of `a-z`, `0-9` and inner `-`.
/// The languages people write in here (ISO 639-1): English and Spanish
/// first, then the languages of the movements hosted — migrants' languages
/// among them. Search stems English and Spanish; the others are indexed
/// without stemming.
pub const LANGUAGES: &[&str] = &[
    "en", "es", "pt", "fr", "ca", "eu", "gl", "it", "de", "nl", "ht", "ar", "fa", "ur", "hi", "bn",
    "zh", "ko", "ja", "vi", "tl", "ru", "uk", "pl", "ro", "tr", "el", "sw", "so", "am", "ti", "qu",
    "gn", "ay", "he", "id", "ms", "th", "ne", "ps",
];

/// Checks a language code against [`LANGUAGES`]; the error names `field`.
pub fn check_language(field: &str, code: &str) -> Result<(), String> {
    if LANGUAGES.contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "{field}: {code:?} is not a supported language (ISO 639-1, e.g. en, es, pt, fr, ht, ar)"
        ))
    }
}

pub fn check_slug(field: &str, value: &str) -> Result<(), String> {
    let valid = (2..=48).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field}: {value:?} is not a valid slug (2-48 characters: a-z, 0-9 and single inner hyphens)"
        ))
    }
}

/// Converts a chrono time to a protobuf timestamp.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// Converts a protobuf timestamp to chrono (the epoch when absent or invalid).
pub fn from_timestamp(time: Option<&prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    time.and_then(|ts| chrono::DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32))
        .unwrap_or_default()
}

/// How long a listener waits for its port while it is "in use".
const BIND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(75);

/// Binds a TCP listener, with a clear error naming the address.
///
/// A port that is "in use" is tried again for up to 75 s: the fixed
/// ports (50051…) lie in Linux's range of ephemeral ports, so a client
/// connection that just closed (after a test run, say) can hold one in
/// TIME-WAIT for a minute. A port held by a listening server still fails,
/// after the wait; `make run` checks for those before it starts anything.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|err| anyhow::anyhow!("listen address {addr:?}: {err}"))?;
    let deadline = std::time::Instant::now() + BIND_PATIENCE;
    let mut warned = false;
    loop {
        match TcpListener::bind(parsed).await {
            Err(err)
                if err.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                if !warned {
                    tracing::warn!(%addr, "address in use; trying again for up to 75 s");
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            result => return result.map_err(|err| anyhow::anyhow!("bind {addr}: {err}")),
        }
    }
}

/// Serves gRPC `routes` plus `grpc.health.v1` (reporting `services` as
/// serving) and gRPC reflection until `shutdown` is cancelled.
pub async fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    services: &[&str],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for service in services {
        reporter
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(anp_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let local_addr = listener.local_addr()?;
    info!(%local_addr, "grpc listening");
    let routes = routes.add_service(health_service).add_service(reflection);
    tonic::transport::Server::builder()
        .trace_fn(|request| {
            span_with_remote_parent(
                request.headers(),
                tracing::info_span!("grpc", path = %request.uri().path()),
            )
        })
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// Cancels the token on SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        info!("shutdown requested");
        trigger.cancel();
    });
    token
}

/// Makes freed large allocations go back to the operating system.
///
/// glibc raises its mmap threshold after the first large block is freed, so
/// later ones (Argon2id's 19 MiB per password hash, Tantivy's buffers) come
/// from arenas that never shrink, and a service's memory grows with every
/// sign-up. A fixed threshold keeps them mmapped and returned on free. Call
/// once at start; a no-op elsewhere than glibc.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is safe to call at
    // any time, and 128 KiB is glibc's own default threshold.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// [`return_large_allocations`] for a service that allocates and frees the
/// same blocks of up to `reused` bytes many times a second (the search
/// index: a term hash table and arena pages for every commit's segment):
/// blocks up to that size are reused from the heap instead of mapped,
/// faulted in and unmapped each time; larger ones still go back to the
/// operating system on free. Call [`give_back_free_memory`] after a burst
/// of such blocks (a rebuild) and now and then. A no-op elsewhere than glibc.
pub fn reuse_allocations_up_to(reused: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is safe to call at
    // any time. The threshold is capped at glibc's own maximum (32 MiB).
    unsafe {
        let threshold = reused.min(32 * 1024 * 1024) + 1;
        let int = |bytes: usize| libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, int(threshold));
        // Nor is the heap's free top handed back after each such block (as
        // glibc does once it raises the threshold itself).
        libc::mallopt(libc::M_TRIM_THRESHOLD, int(2 * threshold));
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = reused;
}

/// Returns the heap's free memory to the operating system (glibc's
/// `malloc_trim`). Blocking for a few milliseconds; a no-op elsewhere.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The caller's access to a site or network, from the sites service (which
/// owns roles), asked with the caller's own token when there is one.
pub async fn sites_access(
    sites: &anp_proto::sites::v1::sites_service_client::SitesServiceClient<
        tonic::transport::Channel,
    >,
    token: Option<&str>,
    scope: anp_proto::sites::v1::Scope,
) -> Result<anp_proto::sites::v1::Access, tonic::Status> {
    let mut request =
        tonic::Request::new(anp_proto::sites::v1::GetAccessRequest { scope: Some(scope) });
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("authorization: malformed token"))?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(sites.clone().get_access(request).await?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_is_bound_once_it_is_free() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap().to_string();
        let binding = tokio::spawn({
            let addr = addr.clone();
            async move { bind(&addr).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert!(!binding.is_finished(), "waits while the port is held");
        drop(held);
        let listener = tokio::time::timeout(std::time::Duration::from_secs(10), binding)
            .await
            .expect("bound soon after the port was freed")
            .unwrap()
            .unwrap();
        assert_eq!(listener.local_addr().unwrap().to_string(), addr);
        assert!(bind("not an address").await.is_err());
    }

    #[test]
    fn languages_beyond_english_and_spanish() {
        for good in ["en", "es", "pt", "fr", "ht", "ar", "qu"] {
            assert!(check_language("lang", good).is_ok(), "{good}");
        }
        for bad in ["", "xx", "EN", "en-US", "english"] {
            let err = check_language("lang", bad).unwrap_err();
            assert!(err.starts_with("lang: "), "{err}");
        }
    }

    #[test]
    fn slugs() {
        for good in ["ab", "new-york", "a1-b2", &"a".repeat(48)] {
            assert!(check_slug("slug", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "A-b",
            "-ab",
            "ab-",
            "a--b",
            "a_b",
            "ñu",
            &"a".repeat(49),
        ] {
            let error = check_slug("slug", bad).unwrap_err();
            assert!(error.starts_with("slug:"), "{error}");
        }
    }

    #[test]
    fn text_fields() {
        assert!(check_text("title", "Hola", 10).is_ok());
        assert!(check_text("title", "línea\nnueva", 20).is_ok());
        assert!(
            check_text("title", "  ", 10)
                .unwrap_err()
                .starts_with("title:")
        );
        assert!(
            check_text("title", "ñññññ", 4)
                .unwrap_err()
                .contains("5 characters")
        );
        assert!(
            check_text("title", "a\u{0}b", 10)
                .unwrap_err()
                .contains("control")
        );
    }

    #[test]
    fn secret_tokens_compare_and_never_print() {
        let token = SecretToken::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cres"));
        assert!(!SecretToken::new("").matches(""));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_and_traceparent_headers() {
        let token = SecretToken::new("tok");
        let mut request = tonic::Request::new(());
        assert_eq!(
            require_bearer(&request, &token).unwrap_err().code(),
            Code::Unauthenticated
        );
        request
            .metadata_mut()
            .insert("authorization", "Bearer tok".parse().unwrap());
        assert!(require_bearer(&request, &token).is_ok());
        let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        request
            .metadata_mut()
            .insert("traceparent", good.parse().unwrap());
        assert_eq!(traceparent(&request).as_deref(), Some(good));
        request
            .metadata_mut()
            .insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(traceparent(&request), None);
    }

    #[test]
    fn trace_context_flows_from_a_header_to_the_current_span() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        tracing::subscriber::with_default(subscriber, || {
            let span = span_from_traceparent(incoming, tracing::info_span!("handler"));
            let _entered = span.enter();
            let current = current_traceparent().expect("a trace context");
            assert!(
                current.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
                "{current}"
            );
            assert!(
                !current.contains("b7ad6b7169203331"),
                "a span of its own: {current}"
            );
        });
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].parent_span_id.to_string(),
            "b7ad6b7169203331",
            "the header's span is the parent"
        );
        // With no OpenTelemetry layer there is no trace context to report.
        assert_eq!(current_traceparent(), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let now = chrono::DateTime::from_timestamp(1_764_000_000, 123_000).unwrap();
        assert_eq!(from_timestamp(Some(&timestamp(now))), now);
        assert_eq!(from_timestamp(None).timestamp(), 0);
    }
}
