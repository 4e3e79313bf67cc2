//! Atom (RFC 4287) feeds from feed entries.

use anp_proto::aggregator::v1::FeedEntry;
use atom_syndication::{Content, Entry, Feed, Generator, Link, Person, Text};
use chrono::{DateTime, FixedOffset, Utc};

fn fixed(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.fixed_offset()
}

fn link(href: String, rel: &str, mime: &str) -> Link {
    Link {
        href,
        rel: rel.to_owned(),
        mime_type: Some(mime.to_owned()),
        ..Default::default()
    }
}

/// Renders a feed. `page_url` is the HTML page, `self_url` the feed itself,
/// `post_url` gives each entry's page.
pub fn render(
    title: &str,
    page_url: &str,
    self_url: &str,
    entries: &[FeedEntry],
    post_url: impl Fn(&FeedEntry) -> String,
) -> String {
    let updated = entries
        .iter()
        .map(|entry| anp_kit::from_timestamp(entry.updated_at.as_ref()))
        .max()
        .unwrap_or_else(|| DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default());
    let atom_entries = entries
        .iter()
        .map(|entry| {
            let published = anp_kit::from_timestamp(entry.published_at.as_ref());
            let updated = anp_kit::from_timestamp(entry.updated_at.as_ref());
            Entry {
                id: format!("urn:uuid:{}", entry.id),
                title: Text::plain(entry.title.clone()),
                updated: fixed(updated),
                published: Some(fixed(published)),
                authors: vec![Person {
                    name: if entry.site_name.is_empty() {
                        entry.site_slug.clone()
                    } else {
                        entry.site_name.clone()
                    },
                    ..Default::default()
                }],
                links: vec![link(post_url(entry), "alternate", "text/html")],
                summary: Some(Text::html(entry.summary_html.clone())),
                content: Some(Content {
                    value: Some(entry.body_html.clone()),
                    content_type: Some("html".to_owned()),
                    lang: Some(entry.lang.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let feed = Feed {
        id: self_url.to_owned(),
        title: Text::plain(title.to_owned()),
        updated: fixed(updated),
        authors: vec![Person {
            name: title.to_owned(),
            ..Default::default()
        }],
        links: vec![
            link(self_url.to_owned(), "self", "application/atom+xml"),
            link(page_url.to_owned(), "alternate", "text/html"),
        ],
        generator: Some(Generator {
            value: "ANP".to_owned(),
            ..Default::default()
        }),
        entries: atom_entries,
        ..Default::default()
    };
    feed.to_string()
}
