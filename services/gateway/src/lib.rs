//! The gateway: server-rendered HTML (readable on a phone, no JavaScript)
//! and Atom feeds, over the other services' gRPC APIs.

pub mod atom;
mod calendar;
mod directory;
mod etag;
pub mod i18n;
pub mod jsonfeed;
pub mod meter;
mod views;

use anp_kit::{ErrorKind, Shutdown};
use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::calendar::v1::calendar_service_client::CalendarServiceClient;
use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::views::FeedFormat;
use minijinja::Environment;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::TcpListener;
use tonic::transport::Channel;
use tracing::info;

pub const SERVICE: &str = "gateway";

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub sites_url: String,
    pub content_url: String,
    /// The events (calendar) service.
    pub events_url: String,
    pub aggregator_url: String,
    /// Absolute URL the gateway is reached at, for links in feeds.
    pub public_url: String,
    pub umbrella_name: String,
    /// How often request counts go to the usage meters.
    pub usage_flush: std::time::Duration,
}

impl Config {
    pub fn from_env() -> Self {
        Config {
            sites_url: anp_kit::env_or("ANP_SITES_URL", "http://127.0.0.1:50051"),
            content_url: anp_kit::env_or("ANP_CONTENT_URL", "http://127.0.0.1:50052"),
            events_url: anp_kit::env_or("ANP_EVENTS_URL", "http://127.0.0.1:50054"),
            aggregator_url: anp_kit::env_or("ANP_AGGREGATOR_URL", "http://127.0.0.1:50053"),
            public_url: anp_kit::env_or("ANP_PUBLIC_URL", "http://127.0.0.1:8080"),
            umbrella_name: anp_kit::env_or("ANP_UMBRELLA_NAME", "Liberation.Network"),
            usage_flush: std::time::Duration::from_secs(
                anp_kit::env_or("ANP_USAGE_FLUSH_SECS", "10")
                    .parse()
                    .unwrap_or(10)
                    .max(1),
            ),
        }
    }
}

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub sites: SitesServiceClient<Channel>,
    pub content: ContentServiceClient<Channel>,
    pub calendar: CalendarServiceClient<Channel>,
    pub aggregator: AggregatorServiceClient<Channel>,
    pub templates: &'static Environment<'static>,
    pub public_url: String,
    pub umbrella_name: String,
    pub meter: meter::Meter,
    /// The umbrella page's directory map and tags, and when they were read.
    pub directory_summary: Arc<Mutex<Option<(Instant, minijinja::Value)>>>,
}

fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())
        .map_err(|err| anyhow::anyhow!("service url {url:?}: {err}"))?
        .connect_lazy())
}

/// The bundled templates, parsed once per process.
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(load_templates)
}

/// Every template's name and source, bundled into the binary.
pub(crate) fn template_sources() -> [(&'static str, &'static str); 13] {
    [
        ("base.html", include_str!("../templates/base.html")),
        ("feed.html", include_str!("../templates/feed.html")),
        ("search.html", include_str!("../templates/search.html")),
        ("post.html", include_str!("../templates/post.html")),
        ("page.html", include_str!("../templates/page.html")),
        ("thread.html", include_str!("../templates/thread.html")),
        ("error.html", include_str!("../templates/error.html")),
        (
            "directory.html",
            include_str!("../templates/directory.html"),
        ),
        ("map.html", include_str!("../templates/map.html")),
        ("calendar.html", include_str!("../templates/calendar.html")),
        ("event.html", include_str!("../templates/event.html")),
        ("signin.html", include_str!("../templates/signin.html")),
        ("events.html", include_str!("../templates/events.html")),
    ]
}

fn load_templates() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.add_function("t", i18n::template_function);
    for (name, source) in template_sources() {
        environment
            .add_template(name, source)
            .expect("bundled templates are valid");
    }
    environment
}

/// Only paths of this site are followed after sign-in or a change of
/// language.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(AppState {
            sites: SitesServiceClient::new(channel(&config.sites_url)?),
            content: ContentServiceClient::new(channel(&config.content_url)?),
            calendar: CalendarServiceClient::new(channel(&config.events_url)?),
            aggregator: AggregatorServiceClient::new(channel(&config.aggregator_url)?),
            templates: templates(),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            umbrella_name: config.umbrella_name.clone(),
            meter: meter::Meter::default(),
            directory_summary: Default::default(),
        })
    }
}

/// Every route of the gateway.
pub fn router(state: AppState) -> Router {
    let meter = state.meter.clone();
    Router::new()
        .route("/", get(views::umbrella))
        .route(
            "/feed.atom",
            get(|s, q| views::umbrella_feed(s, q, FeedFormat::Atom)),
        )
        .route(
            "/feed.json",
            get(|s, q| views::umbrella_feed(s, q, FeedFormat::Json)),
        )
        .route("/{topic}/{value}", get(views::topic_page))
        .route(
            "/{topic}/{value}/feed.atom",
            get(|s, p, q| views::topic_feed(s, p, q, FeedFormat::Atom)),
        )
        .route(
            "/{topic}/{value}/feed.json",
            get(|s, p, q| views::topic_feed(s, p, q, FeedFormat::Json)),
        )
        .route("/search", get(views::search))
        .route("/api/search", get(views::search_json))
        .route("/opensearch.xml", get(views::opensearch))
        .route(
            "/search/feed.atom",
            get(|s, q| views::search_feed(s, q, FeedFormat::Atom)),
        )
        .route(
            "/search/feed.json",
            get(|s, q| views::search_feed(s, q, FeedFormat::Json)),
        )
        .route("/directory", get(directory::page))
        .route("/directory.geojson", get(directory::geojson))
        .route("/healthz", get(|| async { "ok" }))
        .route("/n/{network}", get(views::network))
        .route(
            "/n/{network}/feed.atom",
            get(|s, p, q| views::network_feed(s, p, q, FeedFormat::Atom)),
        )
        .route(
            "/n/{network}/feed.json",
            get(|s, p, q| views::network_feed(s, p, q, FeedFormat::Json)),
        )
        .route("/n/{network}/{site}", get(views::site))
        .route(
            "/n/{network}/{site}/feed.atom",
            get(|s, p, q| views::site_feed(s, p, q, FeedFormat::Atom)),
        )
        .route(
            "/n/{network}/{site}/feed.json",
            get(|s, p, q| views::site_feed(s, p, q, FeedFormat::Json)),
        )
        .route("/n/{network}/{site}/posts/{post_id}", get(views::post))
        .route("/n/{network}/{site}/pages/{slug}", get(views::page))
        .route("/n/{network}/threads/{thread_id}", get(views::thread))
        .route("/n/{network}/{site}/calendar.ics", get(calendar::site_ics))
        .route("/n/{network}/calendar.ics", get(calendar::network_ics))
        .route("/calendar.ics", get(calendar::umbrella_ics))
        .route("/events", get(calendar::umbrella_events))
        .route(
            "/events/feed.atom",
            get(|s, q| calendar::umbrella_events_feed(s, q, FeedFormat::Atom)),
        )
        .route(
            "/events/feed.json",
            get(|s, q| calendar::umbrella_events_feed(s, q, FeedFormat::Json)),
        )
        .route("/n/{network}/events", get(calendar::network_events))
        .route(
            "/n/{network}/events/feed.atom",
            get(|s, p, q| calendar::network_events_feed(s, p, q, FeedFormat::Atom)),
        )
        .route(
            "/n/{network}/events/feed.json",
            get(|s, p, q| calendar::network_events_feed(s, p, q, FeedFormat::Json)),
        )
        .route("/n/{network}/{site}/calendar", get(calendar::site_calendar))
        .route(
            "/n/{network}/{site}/events/{event}",
            get(calendar::event_page),
        )
        .route(
            "/n/{network}/{site}/events/{event}/rsvp",
            post(calendar::rsvp),
        )
        .route(
            "/n/{network}/{site}/event-ics/{file}",
            get(calendar::event_ics),
        )
        .route("/signin", get(calendar::signin_form).post(calendar::signin))
        .route("/signout", post(calendar::signout))
        .route("/language", get(i18n::choose))
        .fallback(views::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(etag::etag))
        .layer(axum::middleware::from_fn(i18n::middleware))
        .layer(axum::middleware::from_fn_with_state(meter, meter::count))
}

/// Serves the gateway on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let flush = tokio::spawn(state.meter.clone().run(
        state.aggregator.clone(),
        config.usage_flush,
        shutdown.clone(),
    ));
    info!(addr = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    let _ = flush.await;
    Ok(())
}

/// An error page with the right HTTP status.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub fn from_status(status: tonic::Status) -> Self {
        let kind = ErrorKind::from_grpc(status.code());
        let http = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = match kind {
            ErrorKind::Internal | ErrorKind::Unavailable => {
                tracing::warn!(code = ?status.code(), message = status.message(), "backend call failed");
                i18n::here("error-unavailable")
            }
            _ => status.message().to_owned(),
        };
        PageError::new(http, message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let lang = i18n::current();
        // A status with no message of its own gets the general one.
        let id = format!("status-{}", self.status.as_u16());
        let heading = i18n::text(lang, if i18n::has(&id) { &id } else { "status-other" });
        let body = templates()
            .get_template("error.html")
            .and_then(|template| {
                template.render(minijinja::context! {
                    title => heading.clone(),
                    heading => heading,
                    message => self.message.clone(),
                    umbrella_name => "ANP",
                    ..i18n::context()
                })
            })
            .unwrap_or_else(|_| self.message.clone());
        (self.status, Html(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(header::HeaderName, &str)]) -> (Response, String) {
        let config = Config {
            sites_url: "http://127.0.0.1:9".into(),
            content_url: "http://127.0.0.1:9".into(),
            events_url: "http://127.0.0.1:9".into(),
            aggregator_url: "http://127.0.0.1:9".into(),
            public_url: "http://gateway.test".into(),
            umbrella_name: "Liberation.Network".into(),
            usage_flush: std::time::Duration::from_secs(10),
        };
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = router(AppState::new(&config).unwrap())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let text = String::from_utf8(to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }

    fn header_values(response: &Response, name: header::HeaderName) -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn pages_speak_the_readers_language() {
        let spanish = [(header::ACCEPT_LANGUAGE, "es-MX,es;q=0.9,en;q=0.5")];
        let (response, body) = get("/signin", &spanish).await;
        assert_eq!(response.status(), 200);
        assert!(body.contains("<html lang=\"es\">"), "{body}");
        assert!(body.contains("<h1>Iniciar sesión</h1>") && body.contains("Contraseña"));
        assert!(body.contains("<title>Iniciar sesión · Liberation.Network</title>"));
        assert!(body.contains("placeholder=\"Buscar en todos los movimientos\""));
        assert!(!body.contains("Sign in"), "no English left on the page");
        assert_eq!(header_values(&response, header::CONTENT_LANGUAGE), ["es"]);
        let vary = header_values(&response, header::VARY).join(", ");
        assert!(
            vary.contains("Accept-Language") && vary.contains("Cookie"),
            "{vary}"
        );

        // The search page without words says how to search.
        let (response, body) = get("/search", &spanish).await;
        assert_eq!(response.status(), 200);
        assert!(
            body.contains("aria-label=\"Cómo buscar\"") && body.contains("huelga de alquileres")
        );
        let (_, body) = get("/search", &[]).await;
        assert!(body.contains("aria-label=\"How to search\"") && body.contains("rent strike"));

        // The reader's own choice wins over the browser's.
        let chosen = [
            (header::ACCEPT_LANGUAGE, "es"),
            (header::COOKIE, "anp_ui=en"),
        ];
        let (_, body) = get("/signin", &chosen).await;
        assert!(body.contains("<html lang=\"en\">") && body.contains("<h1>Sign in</h1>"));

        // Errors too: the heading and the message.
        let (response, body) = get("/no/such/route", &spanish).await;
        assert_eq!(response.status(), 404);
        assert!(body.contains("<h1>No encontrado</h1>"), "{body}");
        assert!(body.contains("Esta página no existe.") && body.contains("Volver a la portada"));
        let (_, english) = get("/no/such/route", &[]).await;
        assert!(
            english.contains("There is no such page.") && english.contains("<html lang=\"en\">")
        );

        // The switcher links back to the same page, in each language.
        assert!(
            body.contains("href=\"&#x2f;language?to=en&amp;back=%2Fno%2Fsuch%2Froute\""),
            "{body}"
        );
    }

    #[tokio::test]
    async fn choosing_a_language_keeps_it_and_goes_back() {
        let (response, _) = get("/language?to=es&back=%2Fsearch%3Fq%3Dagua", &[]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(
            header_values(&response, header::LOCATION),
            ["/search?q=agua"]
        );
        let cookie = header_values(&response, header::SET_COOKIE).join("");
        assert!(
            cookie.starts_with("anp_ui=es;") && cookie.contains("Path=/"),
            "{cookie}"
        );

        // Only back to this site, and not to an address of any length.
        let long = format!("%2F{}", "a".repeat(3000));
        for back in [
            "%2F%2Fevil.example",
            "https%3A%2F%2Fevil.example",
            "%2F%5Cevil",
            long.as_str(),
        ] {
            let (response, _) = get(&format!("/language?to=en&back={back}"), &[]).await;
            assert_eq!(header_values(&response, header::LOCATION), ["/"], "{back}");
        }

        let (response, body) = get("/language?to=fr", &[]).await;
        assert_eq!(response.status(), 400);
        assert!(body.starts_with("to:"), "{body}");
        assert!(header_values(&response, header::SET_COOKIE).is_empty());
        assert!(
            header_values(&response, header::CONTENT_LANGUAGE).is_empty(),
            "only pages say their language"
        );
    }

    #[tokio::test]
    async fn browsers_can_add_the_search() {
        let (response, body) = get("/opensearch.xml", &[]).await;
        // `/` may come as a character reference; XML reads both the same.
        let body = body.replace("&#x2f;", "/");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header_values(&response, header::CONTENT_TYPE),
            ["application/opensearchdescription+xml; charset=utf-8"]
        );
        // At most 16 characters.
        assert!(
            body.contains("<ShortName>Liberation.Netwo</ShortName>"),
            "{body}"
        );
        assert!(
            body.contains("template=\"http://gateway.test/search?q={searchTerms}\""),
            "{body}"
        );
        let (_, page) = get("/signin", &[]).await;
        assert!(page.contains("rel=\"search\" type=\"application/opensearchdescription+xml\""));
    }
}
