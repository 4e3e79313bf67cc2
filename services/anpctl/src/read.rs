//! Posts, feeds and search.

use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest, SearchRequest};
use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::content::v1::{EditPostRequest, GetPostRequest, Post, PublishPostRequest};
use clap::{Args, Subcommand};

use crate::{auth, channel, grpc_error, split_site, time};

#[derive(Subcommand)]
pub enum PostCommand {
    /// Publish a post on a site (editors and admins).
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

#[derive(Args)]
pub struct FeedArgs {
    /// `<network>` or `<network>/<site>`; the umbrella when left out.
    scope: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Cursor printed at the end of a previous page.
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Args)]
pub struct SearchArgs {
    query: String,
    #[arg(long)]
    network: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
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

pub async fn post(url: &str, command: PostCommand) -> anyhow::Result<()> {
    let mut content = ContentServiceClient::new(channel(url).await?);
    match command {
        PostCommand::Publish {
            site,
            title,
            body,
            lang,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let post = content
                .publish_post(auth::session(PublishPostRequest {
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
        PostCommand::Edit {
            post_id,
            title,
            body,
            lang,
            expected_version,
        } => {
            let post = content
                .edit_post(auth::session(EditPostRequest {
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
        PostCommand::Get { post_id } => {
            let post = content
                .get_post(GetPostRequest { post_id })
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
            println!("\n{}", post.body_markdown);
        }
    }
    Ok(())
}

pub async fn feed(url: &str, args: FeedArgs) -> anyhow::Result<()> {
    let scope = match args.scope.as_deref() {
        None | Some("") => FeedScope::default(),
        Some(path) => match path.split_once('/') {
            Some((network, site)) => FeedScope {
                network_slug: network.to_owned(),
                site_slug: site.to_owned(),
                site_id: String::new(),
            },
            None => FeedScope {
                network_slug: path.to_owned(),
                site_slug: String::new(),
                site_id: String::new(),
            },
        },
    };
    let mut aggregator = AggregatorServiceClient::new(channel(url).await?);
    let page = aggregator
        .get_feed(GetFeedRequest {
            scope: Some(scope),
            cursor: args.cursor.unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(grpc_error)?
        .into_inner();
    for entry in &page.entries {
        println!(
            "{}\t{}/{}\t{}\t{}",
            time(entry.published_at.as_ref()),
            entry.network_slug,
            entry.site_slug,
            entry.lang,
            entry.title
        );
    }
    if !page.next_cursor.is_empty() {
        println!("next: --cursor {}", page.next_cursor);
    }
    Ok(())
}

pub async fn search(url: &str, args: SearchArgs) -> anyhow::Result<()> {
    let mut aggregator = AggregatorServiceClient::new(channel(url).await?);
    let response = aggregator
        .search(SearchRequest {
            query: args.query,
            network_slug: args.network.unwrap_or_default(),
            limit: args.limit,
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
    Ok(())
}
