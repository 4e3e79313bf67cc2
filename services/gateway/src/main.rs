//! `anp-gateway`: the web front end.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = anp_kit::init_tracing(anp_gateway::SERVICE);
    let config = anp_gateway::Config::from_env();
    let listener = anp_kit::bind(&anp_kit::env_or("ANP_GATEWAY_LISTEN", "127.0.0.1:8080")).await?;
    anp_gateway::run(config, listener, anp_kit::shutdown_on_signal()).await
}
