//! Posts: publish now, later or as a draft; edit; retract; history; lists.

use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::content::v1::*;
use clap::Subcommand;

use crate::{auth, channel, grpc_error, read_body, split_site, time};

#[derive(Subcommand)]
pub enum PostCommand {
    /// Publish a post on a site (editors and admins): now, at --at, or as a
    /// --draft.
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
        /// A tag (repeat for several, at most 10).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// public, network (its members) or site (the site's members).
        #[arg(long, default_value = "public")]
        visibility: String,
        /// Keep it as a draft.
        #[arg(long)]
        draft: bool,
        /// Publish later, e.g. 2026-12-01T18:00:00Z or 2026-12-01T18:00:00-05:00.
        #[arg(long)]
        at: Option<String>,
    },
    /// Replace a post's title and body (and tags or visibility, if given).
    Edit {
        post_id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "")]
        lang: String,
        /// Replace the tags (repeat); --no-tags removes them all.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, conflicts_with = "tags")]
        no_tags: bool,
        #[arg(long, default_value = "")]
        visibility: String,
        /// Fail unless the post is at this version (0: any).
        #[arg(long, default_value_t = 0)]
        expected_version: u64,
    },
    /// Publish a draft or a scheduled post now, or schedule it --at a time.
    PublishDraft {
        post_id: String,
        #[arg(long)]
        at: Option<String>,
    },
    /// Take a post down everywhere (its history stays for the site's editors).
    Retract {
        post_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Show the post in another site too: offered (you edit the post's site;
    /// that site's editors decide) or taken in at once (you edit that site).
    Share {
        post_id: String,
        /// `<network>/<site>` it should appear in.
        site: String,
    },
    /// Accept a post offered to your site.
    Accept { post_id: String, site: String },
    /// Decline a post offered to your site.
    Decline { post_id: String, site: String },
    /// The post leaves a site it was shared into.
    Unshare { post_id: String, site: String },
    /// Posts offered to a site, waiting for its editors.
    Offers {
        /// `<network>/<site>`
        site: String,
    },
    /// Show a post.
    Get { post_id: String },
    /// Every version of a post (the site's editors).
    History { post_id: String },
    /// A site's posts: published (default), draft, scheduled or retracted.
    List {
        /// `<network>/<site>`
        site: String,
        #[arg(long, default_value = "published")]
        status: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, default_value = "")]
        cursor: String,
    },
}

fn parse_at(at: Option<String>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    at.map(|text| {
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|at| anp_kit::timestamp(at.with_timezone(&chrono::Utc)))
            .map_err(|err| anyhow::anyhow!("--at {text:?}: not an RFC 3339 time: {err}"))
    })
    .transpose()
}

fn print_post(post: &Post) {
    let when = match post.status.as_str() {
        "scheduled" => format!("at {}", time(post.publish_at.as_ref())),
        "published" => time(post.published_at.as_ref()),
        _ => time(post.updated_at.as_ref()),
    };
    let tags = if post.tags.is_empty() {
        String::new()
    } else {
        format!("\t#{}", post.tags.join(" #"))
    };
    println!(
        "{}\t{}/{}\tv{}\t{}\t{}\t{when}\t{}{tags}",
        post.id,
        post.network_slug,
        post.site_slug,
        post.version,
        post.status,
        post.visibility,
        post.title
    );
}

fn share_request(post_id: String, site: &str) -> anyhow::Result<tonic::Request<SharePostRequest>> {
    let (network_slug, site_slug) = split_site(site)?;
    auth::session(SharePostRequest {
        post_id,
        network_slug,
        site_slug,
    })
}

async fn decide(
    content: &mut ContentServiceClient<tonic::transport::Channel>,
    post_id: String,
    site: &str,
    accept: bool,
) -> anyhow::Result<()> {
    let (network_slug, site_slug) = split_site(site)?;
    let post = content
        .decide_share(auth::session(DecideShareRequest {
            post_id,
            network_slug,
            site_slug,
            accept,
        })?)
        .await
        .map_err(grpc_error)?
        .into_inner();
    print_post(&post);
    print_shares(&post);
    Ok(())
}

fn print_shares(post: &Post) {
    for share in &post.shares {
        println!(
            "  {} in {}/{} ({})",
            share.status, share.network_slug, share.site_slug, share.site_name
        );
    }
}

pub async fn post(url: &str, command: PostCommand) -> anyhow::Result<()> {
    let mut content = ContentServiceClient::new(channel(url).await?);
    match command {
        PostCommand::Publish {
            site,
            title,
            body,
            lang,
            tags,
            visibility,
            draft,
            at,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let post = content
                .publish_post(auth::session(PublishPostRequest {
                    network_slug,
                    site_slug,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                    tags,
                    visibility,
                    draft,
                    publish_at: parse_at(at)?,
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
            tags,
            no_tags,
            visibility,
            expected_version,
        } => {
            let tags = (no_tags || !tags.is_empty()).then_some(Tags { tags });
            let post = content
                .edit_post(auth::session(EditPostRequest {
                    post_id,
                    expected_version,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                    tags,
                    visibility,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
        }
        PostCommand::PublishDraft { post_id, at } => {
            let post = content
                .publish_draft(auth::session(PublishDraftRequest {
                    post_id,
                    expected_version: 0,
                    publish_at: parse_at(at)?,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
        }
        PostCommand::Retract { post_id, reason } => {
            let post = content
                .retract_post(auth::session(RetractPostRequest { post_id, reason })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
        }
        PostCommand::Share { post_id, site } => {
            let post = content
                .share_post(share_request(post_id, &site)?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
            print_shares(&post);
        }
        PostCommand::Unshare { post_id, site } => {
            let post = content
                .unshare_post(share_request(post_id, &site)?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
            print_shares(&post);
        }
        PostCommand::Accept { post_id, site } => decide(&mut content, post_id, &site, true).await?,
        PostCommand::Decline { post_id, site } => {
            decide(&mut content, post_id, &site, false).await?
        }
        PostCommand::Offers { site } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let offers = content
                .list_share_requests(auth::session(ListShareRequestsRequest {
                    network_slug,
                    site_slug,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            for post in &offers.posts {
                print_post(post);
            }
        }
        PostCommand::Get { post_id } => {
            let post = content
                .get_post(auth::maybe_session(GetPostRequest { post_id })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_post(&post);
            if post.status == "retracted" && !post.retraction_reason.is_empty() {
                println!("retracted: {}", post.retraction_reason);
            }
            println!("\n{}", post.body_markdown);
        }
        PostCommand::History { post_id } => {
            let history = content
                .get_post_history(auth::session(GetPostHistoryRequest { post_id })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            for version in &history.versions {
                println!(
                    "v{}\t{}\t{}\t{}\t{}",
                    version.version,
                    time(version.at.as_ref()),
                    version.event_type,
                    version.actor,
                    version.post.as_ref().map_or("", |post| post.title.as_str())
                );
            }
        }
        PostCommand::List {
            site,
            status,
            limit,
            cursor,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let page = content
                .list_posts(auth::maybe_session(ListPostsRequest {
                    network_slug,
                    site_slug,
                    status,
                    limit,
                    cursor,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            for post in &page.posts {
                print_post(post);
            }
            if !page.next_cursor.is_empty() {
                println!("next: --cursor {}", page.next_cursor);
            }
        }
    }
    Ok(())
}
