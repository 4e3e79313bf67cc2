//! The content service: posts, event-sourced. Markdown bodies are rendered
//! to HTML and sanitized before anything is stored.

pub mod discussions;
pub mod feeds;
pub mod grpc;
pub mod pages;
pub mod posts;
/// Markdown to sanitized HTML (the `anp-markdown` crate).
pub use anp_markdown as render;
pub mod scheduler;
pub mod shares;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use anp_bus::BusConfig;
use anp_eventstore::{EventStore, StoreError};
use anp_kit::{ErrorKind, ServiceError, Shutdown};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tracing::info;
use uuid::Uuid;

pub const SERVICE: &str = "content";

/// Errors of the content service.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("post {post_id} is at version {actual}, not the expected {expected}")]
    VersionMismatch {
        post_id: String,
        expected: u64,
        actual: u64,
    },
    #[error("sites service: {0}")]
    Sites(tonic::Status),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Taken(String),
    #[error("{0}")]
    Exhausted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt event {event_id}: {message}")]
    Corrupt { event_id: Uuid, message: String },
}

impl ServiceError for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Invalid(_) => ErrorKind::InvalidArgument,
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::VersionMismatch { .. } => ErrorKind::Conflict,
            ContentError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            ContentError::Denied(_) => ErrorKind::PermissionDenied,
            ContentError::Precondition(_) => ErrorKind::FailedPrecondition,
            ContentError::Taken(_) => ErrorKind::AlreadyExists,
            ContentError::Exhausted(_) => ErrorKind::ResourceExhausted,
            ContentError::Sites(status) => match ErrorKind::from_grpc(status.code()) {
                kind @ (ErrorKind::NotFound
                | ErrorKind::InvalidArgument
                | ErrorKind::Unauthenticated
                | ErrorKind::PermissionDenied) => kind,
                _ => ErrorKind::Unavailable,
            },
            ContentError::Store(_) | ContentError::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    fn to_status(&self) -> tonic::Status {
        match self {
            // Pass the sites service's own message on (it names the field).
            ContentError::Sites(status) => {
                tonic::Status::new(self.kind().grpc_code(), status.message().to_owned())
            }
            other => {
                let kind = other.kind();
                if kind == ErrorKind::Internal {
                    tracing::error!(error = %other, "internal error");
                    return tonic::Status::internal("internal error");
                }
                tonic::Status::new(kind.grpc_code(), other.to_string())
            }
        }
    }
}

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: anp_kit::DatabaseConfig,
    pub bus: BusConfig,
    /// Verifies the session tokens the sites service signs.
    pub sessions: anp_session::Verifier,
    pub sites_url: String,
    pub embedded_relay: bool,
    /// How often scheduled posts due are published.
    pub scheduler_interval: Duration,
    /// Polling sites' linked feeds.
    pub feeds: feeds::FeedsConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let public_key = std::env::var("ANP_SESSION_PUBLIC_KEY")
            .map_err(|_| anyhow::anyhow!("ANP_SESSION_PUBLIC_KEY must be set"))?;
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_CONTENT_SCHEMA", "content")?,
            bus: BusConfig::from_env(),
            sessions: anp_session::Verifier::from_public_key(&public_key)?,
            sites_url: anp_kit::env_or("ANP_SITES_URL", "http://127.0.0.1:50051"),
            embedded_relay: anp_kit::env_or("ANP_EMBEDDED_RELAY", "true") == "true",
            scheduler_interval: Duration::from_millis(
                anp_kit::env_or("ANP_SCHEDULER_INTERVAL_MS", "5000")
                    .parse()
                    .map_err(|_| anyhow::anyhow!("ANP_SCHEDULER_INTERVAL_MS: not a number"))?,
            ),
            feeds: feeds_from_env()?,
        })
    }
}

fn feeds_from_env() -> anyhow::Result<feeds::FeedsConfig> {
    let defaults = feeds::FeedsConfig::default();
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        anp_kit::env_or(name, &default.to_string())
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: not a number"))
    };
    Ok(feeds::FeedsConfig {
        interval: Duration::from_secs(number(
            "ANP_FEEDS_INTERVAL_SECS",
            defaults.interval.as_secs(),
        )?),
        tick: Duration::from_millis(number(
            "ANP_FEEDS_TICK_MS",
            defaults.tick.as_millis() as u64,
        )?),
        sync: Duration::from_secs(number("ANP_FEEDS_SYNC_SECS", defaults.sync.as_secs())?),
        fetch: defaults
            .fetch
            .from_env("ANP_FEEDS_")
            .map_err(anyhow::Error::msg)?,
    })
}

/// Starts the service on `listener` and runs until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let pool = anp_eventstore::connect_pool(
        &config.database.url,
        &config.database.schema,
        config.database.pool_size,
    )
    .await?;
    let store = EventStore::from_pool(pool).await?;
    state::migrate(&store).await?;
    let relay_task = anp_bus::spawn_relay(
        config.embedded_relay,
        SERVICE,
        store.clone(),
        &config.bus,
        shutdown.clone(),
    )
    .await?;
    let sites =
        SitesServiceClient::new(Channel::from_shared(config.sites_url.clone())?.connect_lazy());
    let archive = anp_archive::service::ArchiveService::new(
        SERVICE,
        store.clone(),
        config.sessions.clone(),
        anp_bus::relay_checkpoint(&config.bus),
    )
    .with_tables(Arc::new(state::Tables));
    let content = Content::new(store, sites);
    let scheduler = tokio::spawn(
        content
            .clone()
            .run_scheduler(config.scheduler_interval, shutdown.clone()),
    );
    let feed_reader = tokio::spawn(
        content
            .clone()
            .run_feeds(config.feeds.clone(), shutdown.clone()),
    );
    info!("content service ready");
    anp_kit::serve_grpc(
        listener,
        grpc::routes(content, config.sessions.clone()).add_service(archive.into_server()),
        &[
            "anp.content.v1.ContentService",
            "anp.archive.v1.NetworkArchive",
        ],
        shutdown,
    )
    .await?;
    let _ = scheduler.await;
    let _ = feed_reader.await;
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    Ok(())
}

/// The domain logic of posts (see [`posts`]).
#[derive(Clone)]
pub struct Content {
    store: EventStore,
    sites: SitesServiceClient<Channel>,
}

impl Content {
    pub fn new(store: EventStore, sites: SitesServiceClient<Channel>) -> Self {
        Content { store, sites }
    }

    async fn pool(&self) -> Result<deadpool_postgres::Object, ContentError> {
        Ok(self.store.pool().get().await.map_err(StoreError::from)?)
    }
}
