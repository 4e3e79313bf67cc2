//! `anp-events`: the calendar service over gRPC.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing(anp_events::SERVICE);
    let config = anp_events::Config::from_env()?;
    let listener = anp_kit::bind(&anp_kit::env_or("ANP_EVENTS_LISTEN", "127.0.0.1:50054")).await?;
    anp_events::run(config, listener, anp_kit::shutdown_on_signal()).await
}
