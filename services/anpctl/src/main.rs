//! `anpctl`: the cooperative operators' command-line client over gRPC.
//!
//! The ops token comes from `ANP_OPS_TOKEN`, else from the file named by
//! `ANP_OPS_TOKEN_FILE` (default `.anp/ops-token`, which `make run` writes).

use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest, SearchRequest};
use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::content::v1::{EditPostRequest, GetPostRequest, Post, PublishPostRequest};
use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::ops::v1::{ListNetworksRequest, OnboardNetworkRequest};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::{CreateSiteRequest, ListSitesRequest};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tonic::transport::Channel;

#[derive(Parser)]
#[command(name = "anpctl", version, about = "Operate an ANP installation")]
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
    /// Networks (movements).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Sites of a network.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Blog posts.
    #[command(subcommand)]
    Post(PostCommand),
    /// Newest posts of the umbrella, a network or a site.
    Feed {
        /// `<network>` or `<network>/<site>`; the umbrella when left out.
        scope: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Cursor printed at the end of a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Search across all movements.
    Search {
        query: String,
        #[arg(long)]
        network: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Onboard a network; retrying with the same key is safe.
    Onboard {
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        idempotency_key: String,
    },
    /// List every network.
    List,
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Create a site: `anpctl site create <network>/<site> --name <name>`.
    Create {
        path: String,
        #[arg(long)]
        name: String,
    },
    /// List the sites of a network, or of every network.
    List { network: Option<String> },
}

#[derive(Subcommand)]
enum PostCommand {
    /// Publish a post on a site.
    Publish {
        /// `<network>/<site>`
        site: String,
        #[arg(long)]
        title: String,
        /// Markdown; `-` reads it from standard input.
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Replace a post's title and body.
    Edit {
        post_id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "")]
        lang: String,
        /// Fail unless the post is at this version (0: any).
        #[arg(long, default_value_t = 0)]
        expected_version: u64,
    },
    /// Show a post.
    Get { post_id: String },
}

fn ops_token() -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("ANP_OPS_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let path = match std::env::var("ANP_OPS_TOKEN_FILE") {
        Ok(path) => std::path::PathBuf::from(path),
        Err(_) => default_token_file(),
    };
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("no ANP_OPS_TOKEN and cannot read {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// `.anp/ops-token` in the working directory, else in the checkout this
/// binary was built in (`<checkout>/target/<profile>/anpctl`).
fn default_token_file() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(".anp/ops-token");
    if here.exists() {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join(".anp/ops-token")))
        .filter(|path| path.exists())
        .unwrap_or(here)
}

fn authorized<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", ops_token()?)
            .parse()
            .context("ops token is not valid in a header")?,
    );
    Ok(request)
}

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(url.to_owned())
        .with_context(|| format!("bad address {url}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}"))
}

fn split_site(path: &str) -> anyhow::Result<(String, String)> {
    match path.split_once('/') {
        Some((network, site)) if !network.is_empty() && !site.is_empty() => {
            Ok((network.to_owned(), site.to_owned()))
        }
        _ => bail!("expected <network>/<site>, got {path:?}"),
    }
}

fn read_body(body: String) -> anyhow::Result<String> {
    if body == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    Ok(body)
}

fn print_post(post: &Post) {
    println!(
        "{}\t{}/{}\tv{}\t{}",
        post.id, post.network_slug, post.site_slug, post.version, post.title
    );
}

fn grpc_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Network(NetworkCommand::Onboard {
            slug,
            name,
            idempotency_key,
        }) => {
            let mut ops = OpsServiceClient::new(channel(&cli.sites_url).await?);
            let response = ops
                .onboard_network(authorized(OnboardNetworkRequest {
                    slug,
                    name,
                    idempotency_key,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            let network = response.network.unwrap_or_default();
            let verb = if response.created {
                "onboarded"
            } else {
                "already onboarded"
            };
            println!("{verb} {} ({}) {}", network.slug, network.name, network.id);
        }
        Command::Network(NetworkCommand::List) => {
            let mut ops = OpsServiceClient::new(channel(&cli.sites_url).await?);
            let networks = ops
                .list_networks(authorized(ListNetworksRequest {})?)
                .await
                .map_err(grpc_error)?
                .into_inner()
                .networks;
            for network in networks {
                println!("{}\t{}\t{}", network.slug, network.name, network.id);
            }
        }
        Command::Site(SiteCommand::Create { path, name }) => {
            let (network_slug, slug) = split_site(&path)?;
            let mut sites = SitesServiceClient::new(channel(&cli.sites_url).await?);
            let site = sites
                .create_site(authorized(CreateSiteRequest {
                    network_slug,
                    slug,
                    name,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!(
                "created {}/{} ({}) {}",
                site.network_slug, site.slug, site.name, site.id
            );
        }
        Command::Site(SiteCommand::List { network }) => {
            let mut sites = SitesServiceClient::new(channel(&cli.sites_url).await?);
            let list = sites
                .list_sites(ListSitesRequest {
                    network_slug: network.unwrap_or_default(),
                })
                .await
                .map_err(grpc_error)?
                .into_inner()
                .sites;
            for site in list {
                println!(
                    "{}/{}\t{}\t{}",
                    site.network_slug, site.slug, site.name, site.id
                );
            }
        }
        Command::Post(PostCommand::Publish {
            site,
            title,
            body,
            lang,
        }) => {
            let (network_slug, site_slug) = split_site(&site)?;
            let mut content = ContentServiceClient::new(channel(&cli.content_url).await?);
            let post = content
                .publish_post(authorized(PublishPostRequest {
                    network_slug,
                    site_slug,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
        }
        Command::Post(PostCommand::Edit {
            post_id,
            title,
            body,
            lang,
            expected_version,
        }) => {
            let mut content = ContentServiceClient::new(channel(&cli.content_url).await?);
            let post = content
                .edit_post(authorized(EditPostRequest {
                    post_id,
                    expected_version,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
        }
        Command::Post(PostCommand::Get { post_id }) => {
            let mut content = ContentServiceClient::new(channel(&cli.content_url).await?);
            let post = content
                .get_post(GetPostRequest { post_id })
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
            println!("\n{}", post.body_markdown);
        }
        Command::Feed {
            scope,
            limit,
            cursor,
        } => {
            let scope = match scope.as_deref() {
                None | Some("") => FeedScope::default(),
                Some(path) => match path.split_once('/') {
                    Some((network, site)) => FeedScope {
                        network_slug: network.to_owned(),
                        site_slug: site.to_owned(),
                    },
                    None => FeedScope {
                        network_slug: path.to_owned(),
                        site_slug: String::new(),
                    },
                },
            };
            let mut aggregator = AggregatorServiceClient::new(channel(&cli.aggregator_url).await?);
            let page = aggregator
                .get_feed(GetFeedRequest {
                    scope: Some(scope),
                    cursor: cursor.unwrap_or_default(),
                    limit,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            for entry in &page.entries {
                let published = anp_kit::from_timestamp(entry.published_at.as_ref());
                println!(
                    "{}\t{}/{}\t{}\t{}",
                    published.format("%Y-%m-%d %H:%M"),
                    entry.network_slug,
                    entry.site_slug,
                    entry.lang,
                    entry.title
                );
            }
            if !page.next_cursor.is_empty() {
                println!("next: --cursor {}", page.next_cursor);
            }
        }
        Command::Search {
            query,
            network,
            limit,
        } => {
            let mut aggregator = AggregatorServiceClient::new(channel(&cli.aggregator_url).await?);
            let response = aggregator
                .search(SearchRequest {
                    query,
                    network_slug: network.unwrap_or_default(),
                    limit,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("{} hits", response.total);
            for hit in response.hits {
                println!(
                    "{:.2}\t{}\t{}/{}\t{}",
                    hit.score, hit.kind, hit.network_slug, hit.site_slug, hit.title
                );
            }
        }
    }
    Ok(())
}
