//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>) from feed entries.

use anp_markdown::html_unescape;
use anp_proto::aggregator::v1::FeedEntry;
use serde::Serialize;

pub const VERSION: &str = "https://jsonfeed.org/version/1.1";
pub const CONTENT_TYPE: &str = "application/feed+json; charset=utf-8";

#[derive(Serialize)]
struct Author {
    name: String,
}

#[derive(Serialize)]
struct Item {
    id: String,
    url: String,
    title: String,
    content_html: String,
    summary: String,
    date_published: String,
    date_modified: String,
    authors: Vec<Author>,
    language: String,
}

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    language: Option<&'a str>,
    items: Vec<Item>,
}

/// Renders a feed; `next_url` pages on (JSON Feed's paging).
pub fn render(
    title: &str,
    page_url: &str,
    self_url: &str,
    next_url: Option<String>,
    entries: &[FeedEntry],
    post_url: impl Fn(&FeedEntry) -> String,
) -> String {
    let rfc3339 = |at: Option<&prost_types::Timestamp>| anp_kit::from_timestamp(at).to_rfc3339();
    let items = entries
        .iter()
        .map(|entry| Item {
            id: format!("urn:uuid:{}", entry.id),
            url: post_url(entry),
            title: entry.title.clone(),
            content_html: entry.body_html.clone(),
            // Summaries are escaped text; JSON Feed wants plain text.
            summary: html_unescape(&entry.summary_html),
            date_published: rfc3339(entry.published_at.as_ref()),
            date_modified: rfc3339(entry.updated_at.as_ref()),
            authors: vec![Author {
                name: if entry.site_name.is_empty() {
                    entry.site_slug.clone()
                } else {
                    entry.site_name.clone()
                },
            }],
            language: entry.lang.clone(),
        })
        .collect();
    serde_json::to_string(&JsonFeed {
        version: VERSION,
        title,
        home_page_url: page_url,
        feed_url: self_url,
        next_url,
        language: None,
        items,
    })
    .unwrap_or_else(|_| "{}".to_owned())
}
