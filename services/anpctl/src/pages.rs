//! A site's static pages and their menu order.

use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::content::v1::*;
use clap::Subcommand;

use crate::{auth, channel, grpc_error, read_body, split_site, time};

#[derive(Subcommand)]
pub enum PageCommand {
    /// Add a page to a site's menu (editors and admins).
    Create {
        /// `<network>/<site>`
        site: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        title: String,
        /// Markdown; `-` reads it from standard input.
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Replace a page's title and body (and slug, if given).
    Edit {
        page_id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "")]
        slug: String,
        #[arg(long, default_value = "")]
        lang: String,
    },
    /// Remove a page from the site.
    Delete { page_id: String },
    /// Show a page.
    Get {
        /// `<network>/<site>`
        site: String,
        slug: String,
    },
    /// A site's menu, in order.
    List {
        /// `<network>/<site>`
        site: String,
    },
    /// Put the site's pages in this order (every page id once).
    Order {
        /// `<network>/<site>`
        site: String,
        page_ids: Vec<String>,
    },
}

fn print_menu(pages: &[Page]) {
    for page in pages {
        println!(
            "{}\t{}\t{}\t{}",
            page.position, page.id, page.slug, page.title
        );
    }
}

pub async fn page(url: &str, command: PageCommand) -> anyhow::Result<()> {
    let mut content = ContentServiceClient::new(channel(url).await?);
    match command {
        PageCommand::Create {
            site,
            slug,
            title,
            body,
            lang,
        } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let page = content
                .create_page(auth::session(CreatePageRequest {
                    network_slug,
                    site_slug,
                    slug,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("{}\t{}\tposition {}", page.id, page.slug, page.position);
        }
        PageCommand::Edit {
            page_id,
            title,
            body,
            slug,
            lang,
        } => {
            let page = content
                .edit_page(auth::session(EditPageRequest {
                    page_id,
                    expected_version: 0,
                    title,
                    body_markdown: read_body(body)?,
                    lang,
                    slug,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("{}\t{}\tv{}", page.id, page.slug, page.version);
        }
        PageCommand::Delete { page_id } => {
            let page = content
                .delete_page(auth::session(DeletePageRequest { page_id })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("deleted {}", page.slug);
        }
        PageCommand::Get { site, slug } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let page = content
                .get_page(GetPageRequest {
                    network_slug,
                    site_slug,
                    slug,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!(
                "{}\t{}\tv{}\t{}\t{}\n\n{}",
                page.id,
                page.slug,
                page.version,
                time(page.updated_at.as_ref()),
                page.title,
                page.body_markdown
            );
        }
        PageCommand::List { site } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let menu = content
                .list_pages(ListPagesRequest {
                    network_slug,
                    site_slug,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_menu(&menu.pages);
        }
        PageCommand::Order { site, page_ids } => {
            let (network_slug, site_slug) = split_site(&site)?;
            let menu = content
                .reorder_pages(auth::session(ReorderPagesRequest {
                    network_slug,
                    site_slug,
                    page_ids,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_menu(&menu.pages);
        }
    }
    Ok(())
}
