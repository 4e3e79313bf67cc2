//! `anp-relay`: the outbox relay of one service as its own process, for
//! deployments (and tests) that run it apart from the service.
//!
//! Environment: `ANP_RELAY_SERVICE` (e.g. `content`), `ANP_RELAY_SCHEMA`
//! (default: the service name), `ANP_DATABASE_URL`, and the `ANP_NATS_*`
//! variables of [`anp_bus::BusConfig::from_env`].

use anp_bus::{BusConfig, Relay};
use anp_eventstore::EventStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing("relay");
    let service = std::env::var("ANP_RELAY_SERVICE")
        .map_err(|_| anyhow::anyhow!("ANP_RELAY_SERVICE must be set"))?;
    let schema = anp_kit::env_or("ANP_RELAY_SCHEMA", &service);
    let database_url =
        anp_kit::env_or("ANP_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/anp");
    let bus = BusConfig::from_env();
    let store = EventStore::connect(&database_url, &schema).await?;
    let jetstream = anp_bus::connect(&bus).await?;
    anp_bus::ensure_stream(&jetstream, &bus).await?;
    Relay::new(&service, store, jetstream, bus)
        .run(anp_kit::shutdown_on_signal())
        .await;
    Ok(())
}
