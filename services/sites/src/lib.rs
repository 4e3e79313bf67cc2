//! The sites service: networks, the tree of sites, accounts, members and
//! roles, and the cooperative's ops API.
//!
//! Domain logic lives on [`Sites`] (plain Rust, `Result<_, SitesError>`), in
//! one module per concern; [`grpc`] adapts it to tonic. Every write appends
//! events and applies them to the state tables in one transaction
//! ([`state`]).

pub mod access;
pub mod accounts;
pub mod archive;
pub mod directory;
pub mod error;
pub mod grpc;
pub mod model;
pub mod ops;
pub mod people;
pub mod state;
pub mod tree;
pub mod usage;

use std::sync::Arc;

use anp_bus::BusConfig;
use anp_eventstore::EventStore;
use anp_kit::{SecretToken, Shutdown};
use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::archive::v1::network_archive_client::NetworkArchiveClient;
use anp_session::Signer;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tracing::info;

pub use error::SitesError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub const SERVICE: &str = "sites";

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: anp_kit::DatabaseConfig,
    pub bus: BusConfig,
    /// The bootstrap ops token (every scope).
    pub ops_token: SecretToken,
    pub signer: Signer,
    pub session_ttl: chrono::Duration,
    /// Sign-in attempts a minute per email (ten times as many per client).
    pub sign_in_per_minute: u32,
    /// Run the outbox relay inside this process (default) or leave it to a
    /// separate `anp-relay`.
    pub embedded_relay: bool,
    /// The aggregator, whose usage meters the ops API reports.
    pub aggregator_url: String,
    /// The other write services (name, URL) whose events of a network an
    /// export, import or offboarding covers (`ANP_ARCHIVE_PEERS`, default
    /// `content=$ANP_CONTENT_URL,events=$ANP_EVENTS_URL`).
    pub archive_peers: Vec<(String, String)>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let token = std::env::var("ANP_OPS_TOKEN")
            .map_err(|_| anyhow::anyhow!("ANP_OPS_TOKEN must be set"))?;
        let seed = std::env::var("ANP_SESSION_SIGNING_KEY").map_err(|_| {
            anyhow::anyhow!(
                "ANP_SESSION_SIGNING_KEY must be set (base64 of 32 random bytes; `anpctl keys generate` makes one)"
            )
        })?;
        let hours: i64 = anp_kit::env_or("ANP_SESSION_TTL_HOURS", "168")
            .parse()
            .map_err(|_| anyhow::anyhow!("ANP_SESSION_TTL_HOURS: not a number of hours"))?;
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_SITES_SCHEMA", "sites")?,
            bus: BusConfig::from_env(),
            ops_token: SecretToken::new(token),
            signer: Signer::from_seed(&seed)?,
            session_ttl: chrono::Duration::hours(hours.clamp(1, 24 * 90)),
            sign_in_per_minute: anp_kit::env_or("ANP_SIGN_IN_PER_MINUTE", "5")
                .parse()
                .map_err(|_| anyhow::anyhow!("ANP_SIGN_IN_PER_MINUTE: not a number"))?,
            embedded_relay: anp_kit::env_or("ANP_EMBEDDED_RELAY", "true") == "true",
            aggregator_url: anp_kit::env_or("ANP_AGGREGATOR_URL", "http://127.0.0.1:50053"),
            archive_peers: archive::parse_peers(&anp_kit::env_or(
                "ANP_ARCHIVE_PEERS",
                &format!(
                    "content={},events={}",
                    anp_kit::env_or("ANP_CONTENT_URL", "http://127.0.0.1:50052"),
                    anp_kit::env_or("ANP_EVENTS_URL", "http://127.0.0.1:50054")
                ),
            ))?,
        })
    }
}

/// Starts the service on `listener` and runs until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    anp_kit::return_large_allocations();
    let pool = anp_eventstore::connect_pool(
        &config.database.url,
        &config.database.schema,
        config.database.pool_size,
    )
    .await?;
    let store = EventStore::from_pool(pool.clone()).await?;
    anp_eventstore::run_migrations(
        &pool,
        "anp_sites_migrations",
        embedded::migrations::runner(),
    )
    .await?;
    let relay_task = anp_bus::spawn_relay(
        config.embedded_relay,
        SERVICE,
        store.clone(),
        &config.bus,
        shutdown.clone(),
    )
    .await?;
    let sites = Sites::new(pool, &config)?;
    let limiter = sites.limiter.clone();
    let shrink_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shrink_shutdown.cancelled() => break,
                _ = every.tick() => limiter.shrink(),
            }
        }
    });
    let routes = grpc::routes(sites);
    info!("sites service ready");
    anp_kit::serve_grpc(
        listener,
        routes,
        &["anp.sites.v1.SitesService", "anp.ops.v1.OpsService"],
        shutdown,
    )
    .await?;
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    Ok(())
}

/// The domain logic of the sites service.
#[derive(Clone)]
pub struct Sites {
    pool: Pool,
    signer: Signer,
    invitation_secret: [u8; 32],
    ops_token: SecretToken,
    session_ttl: chrono::Duration,
    limiter: Arc<accounts::SignInLimiter>,
    aggregator: AggregatorServiceClient<Channel>,
    peers: Vec<archive::Peer>,
}

impl Sites {
    pub fn new(pool: Pool, config: &Config) -> anyhow::Result<Self> {
        let aggregator = AggregatorServiceClient::new(
            Channel::from_shared(config.aggregator_url.clone())?.connect_lazy(),
        );
        let mut peers = Vec::new();
        for (service, url) in &config.archive_peers {
            peers.push(archive::Peer {
                service: service.clone(),
                client: NetworkArchiveClient::new(
                    Channel::from_shared(url.clone())?.connect_lazy(),
                )
                .max_decoding_message_size(anp_archive::convert::MAX_PAYLOAD_BYTES * 2),
            });
        }
        Ok(Sites {
            aggregator,
            peers,
            pool,
            invitation_secret: config.signer.derive_secret("anp-invitations"),
            signer: config.signer.clone(),
            ops_token: config.ops_token.clone(),
            session_ttl: config.session_ttl,
            limiter: accounts::SignInLimiter::new(config.sign_in_per_minute),
        })
    }
}
