//! `anpctl`: the command-line client of an ANP installation — the
//! cooperative's ops API, and the member side (accounts, sites, members,
//! posts) for organizers who prefer a terminal.
//!
//! Credentials: see [`auth`].

mod auth;
mod events;
mod member;
mod ops;
mod pages;
mod posts;
mod read;
mod threads;
mod usage;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tonic::transport::Channel;

#[derive(Parser)]
#[command(
    name = "anpctl",
    version,
    about = "Operate and use an ANP installation"
)]
struct Cli {
    /// gRPC address of the sites service (also serves the ops API).
    #[arg(
        long,
        env = "ANP_SITES_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    sites_url: String,
    /// gRPC address of the content service.
    #[arg(
        long,
        env = "ANP_CONTENT_URL",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    content_url: String,
    /// gRPC address of the events (calendar) service.
    #[arg(
        long,
        env = "ANP_EVENTS_URL",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    events_url: String,
    /// gRPC address of the aggregator.
    #[arg(
        long,
        env = "ANP_AGGREGATOR_URL",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    aggregator_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Networks (movements): onboarding, plans, suspension. Ops token.
    #[command(subcommand)]
    Network(ops::NetworkCommand),
    /// Ops tokens and their scopes. Ops token with tokens:admin.
    #[command(subcommand)]
    Token(ops::TokenCommand),
    /// The ops audit log, newest first. Ops token with audit:read.
    Audit(ops::AuditArgs),
    /// Usage per network (`--month 2026-11`), and `cost-share`. Ops token
    /// with usage:read.
    Usage(usage::UsageArgs),
    /// Session signing keys for a new installation.
    #[command(subcommand)]
    Keys(ops::KeysCommand),
    /// Your account: sign up, log in and out.
    #[command(subcommand)]
    Account(member::AccountCommand),
    /// Sites of a network.
    #[command(subcommand)]
    Site(member::SiteCommand),
    /// Members, invitations and join requests.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Blog posts.
    #[command(subcommand)]
    Post(posts::PostCommand),
    /// A site's static pages and their menu.
    #[command(subcommand)]
    Page(pages::PageCommand),
    /// Discussions of a site or of a network's board.
    #[command(subcommand)]
    Thread(threads::ThreadCommand),
    /// A site's calendar.
    #[command(subcommand)]
    Event(events::EventCommand),
    /// Newest posts of the umbrella, a network or a site.
    Feed(read::FeedArgs),
    /// Search across all movements.
    Search(read::SearchArgs),
    /// The newest items of a site's linked social feeds (--status: each feed's health).
    Social(read::SocialArgs),
    /// How far behind the projections (feeds, search) are, the consumer's
    /// backlog, the index's size and parked events.
    Projections,
    /// Rebuild the read side from the event stores while it keeps serving,
    /// then swap. Ops token with projections:rebuild.
    Reindex(ops::ReindexArgs),
}

/// Quotas given on the command line (unset: the plan's).
#[derive(Args, Debug, Default, Clone)]
pub struct QuotaArgs {
    /// Most active sites.
    #[arg(long)]
    sites: Option<i64>,
    /// Most members.
    #[arg(long)]
    members: Option<i64>,
    /// Most stored bytes.
    #[arg(long)]
    storage_bytes: Option<i64>,
}

pub async fn channel(url: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(url.to_owned())
        .with_context(|| format!("bad address {url}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}"))
}

/// `<network>/<site>`.
pub fn split_site(path: &str) -> anyhow::Result<(String, String)> {
    match path.split_once('/') {
        Some((network, site)) if !network.is_empty() && !site.is_empty() => {
            Ok((network.to_owned(), site.to_owned()))
        }
        _ => bail!("expected <network>/<site>, got {path:?}"),
    }
}

/// A Markdown body from its argument, or from standard input for `-`.
pub fn read_body(body: String) -> anyhow::Result<String> {
    if body == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    Ok(body)
}

pub fn grpc_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

pub fn time(ts: Option<&prost_types::Timestamp>) -> String {
    anp_kit::from_timestamp(ts)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Network(command) => ops::network(&cli.sites_url, command).await,
        Command::Token(command) => ops::token(&cli.sites_url, command).await,
        Command::Audit(args) => ops::audit(&cli.sites_url, args).await,
        Command::Keys(command) => ops::keys(command),
        Command::Usage(args) => usage::usage(&cli.sites_url, args).await,
        Command::Account(command) => member::account(&cli.sites_url, command).await,
        Command::Site(command) => member::site(&cli.sites_url, command).await,
        Command::Member(command) => member::member(&cli.sites_url, command).await,
        Command::Post(command) => posts::post(&cli.content_url, command).await,
        Command::Page(command) => pages::page(&cli.content_url, command).await,
        Command::Thread(command) => threads::thread(&cli.content_url, command).await,
        Command::Event(command) => events::event(&cli.events_url, command).await,
        Command::Feed(args) => read::feed(&cli.aggregator_url, args).await,
        Command::Search(args) => read::search(&cli.aggregator_url, args).await,
        Command::Projections => read::projections(&cli.aggregator_url).await,
        Command::Reindex(args) => ops::reindex(&cli.sites_url, args).await,
        Command::Social(args) => read::social(&cli.content_url, args).await,
    }
}
