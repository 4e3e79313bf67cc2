//! The sites service: networks and sites, and the cooperative's ops API.
//!
//! Domain logic lives in [`Sites`] (plain Rust, `Result<_, SitesError>`);
//! [`grpc`] adapts it to tonic.

pub mod grpc;

use anp_bus::{BusConfig, Relay};
use anp_eventstore::{EventStore, ExpectedVersion, NewEvent, StoreError, append_in};
use anp_kit::{ErrorKind, SecretToken, ServiceError, Shutdown, check_slug, check_text};
use anp_proto::events::v1::{NetworkOnboarded, SiteCreated};
use anp_proto::sites::v1::{Network, Site};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use prost::Message;
use tokio::net::TcpListener;
use tokio_postgres::Row;
use tracing::info;
use uuid::Uuid;

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub const SERVICE: &str = "sites";
const NAME_MAX: usize = 120;
const IDEMPOTENCY_KEY_MAX: usize = 128;

/// Errors of the sites service.
#[derive(Debug, thiserror::Error)]
pub enum SitesError {
    #[error("{0}")]
    Invalid(String),
    #[error("network_slug: no network {0:?}")]
    NetworkNotFound(String),
    #[error("site: no site {0}")]
    SiteNotFound(String),
    #[error("{field}: {value:?} is already taken")]
    Taken { field: &'static str, value: String },
    #[error("concurrent change, retry: {0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl ServiceError for SitesError {
    fn kind(&self) -> ErrorKind {
        match self {
            SitesError::Invalid(_) => ErrorKind::InvalidArgument,
            SitesError::NetworkNotFound(_) | SitesError::SiteNotFound(_) => ErrorKind::NotFound,
            SitesError::Taken { .. } => ErrorKind::AlreadyExists,
            SitesError::Conflict(_) => ErrorKind::Conflict,
            SitesError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            SitesError::Store(_) | SitesError::Db(_) | SitesError::Pool(_) => ErrorKind::Internal,
        }
    }
}

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: anp_kit::DatabaseConfig,
    pub bus: BusConfig,
    pub ops_token: SecretToken,
    /// Run the outbox relay inside this process (default) or leave it to a
    /// separate `anp-relay`.
    pub embedded_relay: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let token = std::env::var("ANP_OPS_TOKEN")
            .map_err(|_| anyhow::anyhow!("ANP_OPS_TOKEN must be set"))?;
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_SITES_SCHEMA", "sites")?,
            bus: BusConfig::from_env(),
            ops_token: SecretToken::new(token),
            embedded_relay: anp_kit::env_or("ANP_EMBEDDED_RELAY", "true") == "true",
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
    let store = EventStore::from_pool(pool.clone()).await?;
    anp_eventstore::run_migrations(
        &pool,
        "anp_sites_migrations",
        embedded::migrations::runner(),
    )
    .await?;
    let relay_task = if config.embedded_relay {
        let jetstream = anp_bus::connect(&config.bus).await?;
        anp_bus::ensure_stream(&jetstream, &config.bus).await?;
        let relay = Relay::new(SERVICE, store.clone(), jetstream, config.bus.clone());
        Some(tokio::spawn(relay.run(shutdown.clone())))
    } else {
        None
    };
    let sites = Sites { pool };
    let routes = grpc::routes(sites, config.ops_token.clone());
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

/// The domain logic of networks and sites.
#[derive(Clone)]
pub struct Sites {
    pool: Pool,
}

fn network_from_row(row: &Row) -> Result<Network, tokio_postgres::Error> {
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(Network {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: Some(anp_kit::timestamp(created_at)),
    })
}

fn site_from_row(row: &Row) -> Result<Site, tokio_postgres::Error> {
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(Site {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        network_id: row.try_get::<_, Uuid>("network_id")?.to_string(),
        network_slug: row.try_get("network_slug")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: Some(anp_kit::timestamp(created_at)),
    })
}

const SITE_SELECT: &str = "SELECT s.id, s.network_id, n.slug AS network_slug, s.slug, s.name, s.created_at \
     FROM sites s JOIN networks n ON n.id = s.network_id";

impl Sites {
    /// Onboards a network; a retry with the same idempotency key returns the
    /// network the first call made (`created` = false).
    pub async fn onboard_network(
        &self,
        slug: &str,
        name: &str,
        idempotency_key: &str,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<(Network, bool), SitesError> {
        check_slug("slug", slug).map_err(SitesError::Invalid)?;
        check_text("name", name, NAME_MAX).map_err(SitesError::Invalid)?;
        let key = if idempotency_key.is_empty() {
            format!("slug:{slug}")
        } else {
            if idempotency_key.len() > IDEMPOTENCY_KEY_MAX {
                return Err(SitesError::Invalid(format!(
                    "idempotency_key: at most {IDEMPOTENCY_KEY_MAX} bytes"
                )));
            }
            format!("key:{idempotency_key}")
        };
        if let Some(network) = self.network_by_idempotency_key(&key).await? {
            return Ok((network, false));
        }
        let network_id = Uuid::now_v7();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Blocks while a concurrent call with the same key is in flight, then
        // inserts nothing: that call made the network.
        let claimed = tx
            .execute(
                "INSERT INTO networks (id, slug, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&network_id, &slug, &name.trim()],
            )
            .await?;
        if claimed == 0 {
            drop(tx);
            if let Some(network) = self.network_by_idempotency_key(&key).await? {
                return Ok((network, false));
            }
            return Err(SitesError::Taken {
                field: "slug",
                value: slug.to_owned(),
            });
        }
        tx.execute(
            "INSERT INTO network_idempotency (key, network_id) VALUES ($1, $2)",
            &[&key, &network_id],
        )
        .await
        .map_err(|err| conflict_or_db(err, "idempotency_key"))?;
        let payload = NetworkOnboarded {
            network_id: network_id.to_string(),
            slug: slug.to_owned(),
            name: name.trim().to_owned(),
        };
        let event = NewEvent::new(
            "NetworkOnboarded",
            network_id,
            actor,
            payload.encode_to_vec(),
        )
        .with_traceparent(traceparent);
        append_in(
            &*tx,
            &format!("network-{network_id}"),
            ExpectedVersion::NoStream,
            &[event],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|err| conflict_or_db(err, "slug"))?;
        info!(%network_id, slug, "network onboarded");
        let network = self
            .network_by_slug(slug)
            .await?
            .ok_or_else(|| SitesError::NetworkNotFound(slug.to_owned()))?;
        Ok((network, true))
    }

    async fn network_by_idempotency_key(&self, key: &str) -> Result<Option<Network>, SitesError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT n.id, n.slug, n.name, n.created_at FROM network_idempotency k \
                 JOIN networks n ON n.id = k.network_id WHERE k.key = $1",
                &[&key],
            )
            .await?;
        Ok(row.as_ref().map(network_from_row).transpose()?)
    }

    pub async fn network_by_slug(&self, slug: &str) -> Result<Option<Network>, SitesError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, slug, name, created_at FROM networks WHERE slug = $1",
                &[&slug],
            )
            .await?;
        Ok(row.as_ref().map(network_from_row).transpose()?)
    }

    pub async fn get_network(&self, slug: &str) -> Result<Network, SitesError> {
        check_slug("slug", slug).map_err(SitesError::Invalid)?;
        self.network_by_slug(slug)
            .await?
            .ok_or_else(|| SitesError::NetworkNotFound(slug.to_owned()))
    }

    pub async fn list_networks(&self) -> Result<Vec<Network>, SitesError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, slug, name, created_at FROM networks ORDER BY slug",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(network_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn create_site(
        &self,
        network_slug: &str,
        slug: &str,
        name: &str,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        check_slug("network_slug", network_slug).map_err(SitesError::Invalid)?;
        check_slug("slug", slug).map_err(SitesError::Invalid)?;
        check_text("name", name, NAME_MAX).map_err(SitesError::Invalid)?;
        let network = self
            .network_by_slug(network_slug)
            .await?
            .ok_or_else(|| SitesError::NetworkNotFound(network_slug.to_owned()))?;
        let network_id: Uuid = network
            .id
            .parse()
            .map_err(|_| SitesError::NetworkNotFound(network_slug.to_owned()))?;
        let site_id = Uuid::now_v7();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO sites (id, network_id, slug, name) VALUES ($1, $2, $3, $4)",
            &[&site_id, &network_id, &slug, &name.trim()],
        )
        .await
        .map_err(|err| {
            if anp_eventstore::unique_violation(&err).is_some() {
                SitesError::Taken {
                    field: "slug",
                    value: slug.to_owned(),
                }
            } else {
                SitesError::Db(err)
            }
        })?;
        let payload = SiteCreated {
            site_id: site_id.to_string(),
            network_id: network.id.clone(),
            network_slug: network.slug.clone(),
            slug: slug.to_owned(),
            name: name.trim().to_owned(),
        };
        let event = NewEvent::new("SiteCreated", network_id, actor, payload.encode_to_vec())
            .with_site(site_id)
            .with_traceparent(traceparent);
        append_in(
            &*tx,
            &format!("site-{site_id}"),
            ExpectedVersion::NoStream,
            &[event],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|err| conflict_or_db(err, "slug"))?;
        info!(%site_id, network = network_slug, slug, "site created");
        self.get_site_by_slugs(network_slug, slug).await
    }

    pub async fn get_site_by_id(&self, site_id: &str) -> Result<Site, SitesError> {
        let id: Uuid = site_id
            .parse()
            .map_err(|_| SitesError::Invalid(format!("site_id: {site_id:?} is not a UUID")))?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("{SITE_SELECT} WHERE s.id = $1"), &[&id])
            .await?
            .ok_or_else(|| SitesError::SiteNotFound(site_id.to_owned()))?;
        Ok(site_from_row(&row)?)
    }

    pub async fn get_site_by_slugs(
        &self,
        network_slug: &str,
        site_slug: &str,
    ) -> Result<Site, SitesError> {
        check_slug("network_slug", network_slug).map_err(SitesError::Invalid)?;
        check_slug("site_slug", site_slug).map_err(SitesError::Invalid)?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("{SITE_SELECT} WHERE n.slug = $1 AND s.slug = $2"),
                &[&network_slug, &site_slug],
            )
            .await?
            .ok_or_else(|| SitesError::SiteNotFound(format!("{network_slug}/{site_slug}")))?;
        Ok(site_from_row(&row)?)
    }

    pub async fn list_sites(&self, network_slug: &str) -> Result<Vec<Site>, SitesError> {
        let client = self.pool.get().await?;
        let rows = if network_slug.is_empty() {
            client
                .query(&format!("{SITE_SELECT} ORDER BY n.slug, s.slug"), &[])
                .await?
        } else {
            check_slug("network_slug", network_slug).map_err(SitesError::Invalid)?;
            if self.network_by_slug(network_slug).await?.is_none() {
                return Err(SitesError::NetworkNotFound(network_slug.to_owned()));
            }
            client
                .query(
                    &format!("{SITE_SELECT} WHERE n.slug = $1 ORDER BY s.slug"),
                    &[&network_slug],
                )
                .await?
        };
        Ok(rows.iter().map(site_from_row).collect::<Result<_, _>>()?)
    }
}

fn conflict_or_db(err: tokio_postgres::Error, field: &'static str) -> SitesError {
    if anp_eventstore::unique_violation(&err).is_some() {
        return SitesError::Conflict(format!("{field}: changed concurrently"));
    }
    SitesError::Db(err)
}
