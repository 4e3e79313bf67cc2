//! `anp-aggregator`: search and feeds, projected from the events stream.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing(anp_aggregator::SERVICE);
    let config = anp_aggregator::Config::from_env()?;
    let listener =
        anp_kit::bind(&anp_kit::env_or("ANP_AGGREGATOR_LISTEN", "127.0.0.1:50053")).await?;
    anp_aggregator::run(config, listener, anp_kit::shutdown_on_signal()).await
}
