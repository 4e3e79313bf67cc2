//! The events service: a site's calendar. Editors schedule one-off and
//! recurring events in the site's time zone, cancel or move single
//! occurrences, edit or cancel an event, invite other sites to co-host it
//! and import calendars; signed-in people RSVP (with a waitlist); everyone
//! reads occurrences and iCalendar. The time rules live in `anp-calendar`.

pub mod calendar;
pub mod grpc;
pub mod hosts;
pub mod import;
pub mod rsvps;

use std::sync::Arc;

use anp_bus::BusConfig;
use anp_eventstore::{EventStore, StoreError};
use anp_kit::{ErrorKind, ServiceError, Shutdown};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tracing::info;

pub const SERVICE: &str = "events";

/// Errors of the events service.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Precondition(String),
    #[error("sites service: {0}")]
    Sites(tonic::Status),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt event: {0}")]
    Corrupt(String),
}

impl From<tokio_postgres::Error> for EventsError {
    fn from(err: tokio_postgres::Error) -> Self {
        EventsError::Store(StoreError::from(err))
    }
}

impl From<deadpool_postgres::PoolError> for EventsError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        EventsError::Store(StoreError::from(err))
    }
}

impl From<anp_calendar::CalendarError> for EventsError {
    fn from(err: anp_calendar::CalendarError) -> Self {
        EventsError::Invalid(err.to_string())
    }
}

impl ServiceError for EventsError {
    fn kind(&self) -> ErrorKind {
        match self {
            EventsError::Invalid(_) => ErrorKind::InvalidArgument,
            EventsError::NotFound(_) => ErrorKind::NotFound,
            EventsError::Denied(_) => ErrorKind::PermissionDenied,
            EventsError::Precondition(_) => ErrorKind::FailedPrecondition,
            EventsError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            EventsError::Sites(status) => match ErrorKind::from_grpc(status.code()) {
                kind @ (ErrorKind::NotFound
                | ErrorKind::InvalidArgument
                | ErrorKind::Unauthenticated
                | ErrorKind::PermissionDenied) => kind,
                _ => ErrorKind::Unavailable,
            },
            EventsError::Store(_) | EventsError::Corrupt(_) => ErrorKind::Internal,
        }
    }

    fn to_status(&self) -> tonic::Status {
        match self {
            EventsError::Sites(status) => {
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
    /// Verifies the session tokens (and grants) the sites service signs.
    pub sessions: anp_session::Verifier,
    pub sites_url: String,
    pub embedded_relay: bool,
    /// Fetching calendars to import from a URL (`ANP_EVENTS_IMPORT_*`).
    pub imports: anp_fetch::Limits,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let public_key = std::env::var("ANP_SESSION_PUBLIC_KEY")
            .map_err(|_| anyhow::anyhow!("ANP_SESSION_PUBLIC_KEY must be set"))?;
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_EVENTS_SCHEMA", "events")?,
            bus: BusConfig::from_env(),
            sessions: anp_session::Verifier::from_public_key(&public_key)?,
            sites_url: anp_kit::env_or("ANP_SITES_URL", "http://127.0.0.1:50051"),
            embedded_relay: anp_kit::env_or("ANP_EMBEDDED_RELAY", "true") == "true",
            imports: anp_fetch::Limits {
                max_bytes: import::IMPORT_MAX_BYTES,
                user_agent: "ANP calendar import (+https://liberation.network)",
                ..Default::default()
            }
            .from_env("ANP_EVENTS_IMPORT_")
            .map_err(anyhow::Error::msg)?,
        })
    }
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
    calendar::migrate(&store).await?;
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
    .with_tables(Arc::new(calendar::Tables));
    let calendar = calendar::Calendar::new(store, sites, config.imports.clone());
    info!("events service ready");
    anp_kit::serve_grpc(
        listener,
        grpc::routes(calendar, config.sessions.clone()).add_service(archive.into_server()),
        &[
            "anp.calendar.v1.CalendarService",
            "anp.archive.v1.NetworkArchive",
        ],
        shutdown,
    )
    .await?;
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    Ok(())
}
