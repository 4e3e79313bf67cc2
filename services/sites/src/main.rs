//! `anp-sites`: networks, sites and the ops API over gRPC.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing(anp_sites::SERVICE);
    let config = anp_sites::Config::from_env()?;
    let listener = anp_kit::bind(&anp_kit::env_or("ANP_SITES_LISTEN", "127.0.0.1:50051")).await?;
    anp_sites::run(config, listener, anp_kit::shutdown_on_signal()).await
}
