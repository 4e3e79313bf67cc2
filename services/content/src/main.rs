//! `anp-content`: posts over gRPC.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing(anp_content::SERVICE);
    let config = anp_content::Config::from_env()?;
    let listener = anp_kit::bind(&anp_kit::env_or("ANP_CONTENT_LISTEN", "127.0.0.1:50052")).await?;
    anp_content::run(config, listener, anp_kit::shutdown_on_signal()).await
}
