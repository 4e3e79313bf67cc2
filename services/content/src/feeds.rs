//! Linked social feeds: the RSS, Atom and JSON Feed URLs in sites' settings
//! (e.g. a Mastodon account's feed) are polled on a schedule with
//! conditional GET, a timeout and a size limit; private addresses are
//! refused unless configured otherwise; new items are recorded once
//! (`ExternalItemIngested`) and shown on the site. A broken or hostile feed
//! is recorded as an error on that feed and never stops the others.

use std::time::Duration;

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::content::v1::{
    FeedItem, ListFeedItemsRequest, ListFeedItemsResponse, ListSiteFeedsResponse, SiteFeed,
};
use anp_proto::events::v1::ExternalItemIngested;
use anp_proto::sites::v1::{DirectoryRequest, Scope};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use prost::Message;
use tracing::{info, warn};
use uuid::Uuid;

use anp_fetch::{Fetched, fetch};

use crate::{Content, ContentError};

/// Items taken from one fetch at most (the newest).
const ITEMS_PER_FETCH: usize = 50;
const KEY_MAX_CHARS: usize = 500;
const TITLE_MAX_CHARS: usize = 300;
const SUMMARY_MAX_CHARS: usize = 600;
/// Feeds fetched at once.
const CONCURRENCY: usize = 8;

/// How feeds are polled (`ANP_FEEDS_*`).
#[derive(Debug, Clone)]
pub struct FeedsConfig {
    /// Between two polls of one feed (doubling after each failure, up to 16×).
    pub interval: Duration,
    /// How often due feeds are looked for.
    pub tick: Duration,
    /// How often the list of feeds is read again from the sites' settings.
    pub sync: Duration,
    /// Time, size and address limits of one fetch.
    pub fetch: anp_fetch::Limits,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            interval: Duration::from_secs(900),
            tick: Duration::from_secs(5),
            sync: Duration::from_secs(300),
            fetch: anp_fetch::Limits {
                user_agent: "ANP feed reader (+https://liberation.network)",
                ..Default::default()
            },
        }
    }
}

/// An item of a feed, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: String,
    pub title: String,
    pub link: String,
    pub summary_html: String,
    pub author: String,
    pub published_at: DateTime<Utc>,
}

/// The newest items of an RSS, Atom or JSON feed, cleaned: plain-text
/// titles and summaries (escaped), http(s) links only.
pub fn parse_items(bytes: &[u8], now: DateTime<Utc>) -> Result<Vec<Item>, String> {
    let feed = feed_rs::parser::parse(bytes).map_err(|err| format!("not a feed: {err}"))?;
    let mut items: Vec<Item> = feed
        .entries
        .into_iter()
        .filter_map(|entry| {
            let key: String = entry.id.chars().take(KEY_MAX_CHARS).collect();
            if key.is_empty() {
                return None;
            }
            let link = entry
                .links
                .iter()
                .map(|link| link.href.clone())
                .find(|href| href.starts_with("https://") || href.starts_with("http://"))
                .unwrap_or_default();
            let summary = entry
                .summary
                .as_ref()
                .map(|text| text.content.clone())
                .or_else(|| {
                    entry
                        .content
                        .as_ref()
                        .and_then(|content| content.body.clone())
                })
                .unwrap_or_default();
            let title = entry
                .title
                .as_ref()
                .map(|text| anp_markdown::html_summary(&text.content, TITLE_MAX_CHARS))
                .unwrap_or_default();
            Some(Item {
                key,
                title,
                link,
                summary_html: anp_markdown::html_summary(&summary, SUMMARY_MAX_CHARS),
                author: entry
                    .authors
                    .first()
                    .and_then(|person| person.name.as_deref())
                    .map(|name| anp_markdown::html_summary(name, 100))
                    .unwrap_or_default(),
                published_at: entry.published.or(entry.updated).unwrap_or(now).min(now),
            })
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.published_at));
    items.truncate(ITEMS_PER_FETCH);
    Ok(items)
}

/// A feed due for polling.
struct Source {
    feed_id: Uuid,
    site_id: Uuid,
    network_id: Uuid,
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    failures: i32,
}

fn db(err: tokio_postgres::Error) -> ContentError {
    ContentError::Store(anp_eventstore::StoreError::from(err))
}

impl Content {
    /// Runs until `shutdown`: reads the list of feeds from the sites'
    /// settings every `sync`, polls due feeds every `tick`.
    pub async fn run_feeds(self, config: FeedsConfig, shutdown: anp_kit::Shutdown) {
        let mut synced: Option<tokio::time::Instant> = None;
        loop {
            if synced.is_none_or(|at| at.elapsed() >= config.sync) {
                match self.sync_feed_sources().await {
                    Ok(feeds) => {
                        synced = Some(tokio::time::Instant::now());
                        tracing::debug!(feeds, "feed list synced");
                    }
                    Err(err) => warn!(error = %err, "reading the sites' feeds failed"),
                }
            }
            match self.poll_due_feeds(&config).await {
                Ok(0) => {}
                Ok(polled) => tracing::debug!(polled, "feeds polled"),
                Err(err) => warn!(error = %err, "polling feeds failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.tick) => {}
            }
        }
    }

    /// Makes the feed table match the feed URLs in sites' settings; returns
    /// how many feeds there are.
    pub async fn sync_feed_sources(&self) -> Result<usize, ContentError> {
        let mut wanted: Vec<(Uuid, Uuid, String)> = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .sites
                .clone()
                .directory(DirectoryRequest {
                    limit: 1000,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .map_err(ContentError::Sites)?
                .into_inner();
            for site in &page.sites {
                let (Ok(site_id), Ok(network_id)) =
                    (site.id.parse::<Uuid>(), site.network_id.parse::<Uuid>())
                else {
                    continue;
                };
                for url in site.settings.as_ref().map_or(&[][..], |s| &s.feed_urls[..]) {
                    wanted.push((site_id, network_id, url.clone()));
                }
            }
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        let mut client = self.pool().await?;
        let tx = client.transaction().await.map_err(db)?;
        let sites: Vec<Uuid> = wanted.iter().map(|(site, ..)| *site).collect();
        let networks: Vec<Uuid> = wanted.iter().map(|(_, network, _)| *network).collect();
        let urls: Vec<&str> = wanted.iter().map(|(.., url)| url.as_str()).collect();
        let ids: Vec<Uuid> = wanted.iter().map(|_| Uuid::now_v7()).collect();
        tx.execute(
            "INSERT INTO feed_sources (feed_id, site_id, network_id, url) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) \
             ON CONFLICT (site_id, url) DO NOTHING",
            &[&ids, &sites, &networks, &urls],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM feed_sources f WHERE NOT EXISTS (SELECT 1 FROM \
               unnest($1::uuid[], $2::text[]) AS w(site_id, url) \
               WHERE w.site_id = f.site_id AND w.url = f.url)",
            &[&sites, &urls],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(wanted.len())
    }

    /// Claims the feeds due (several content processes share the work),
    /// fetches them a few at a time and records what each brought.
    pub async fn poll_due_feeds(&self, config: &FeedsConfig) -> Result<usize, ContentError> {
        let interval = config.interval.as_secs_f64();
        let sources: Vec<Source> = {
            let client = self.pool().await?;
            client
                .query(
                    "UPDATE feed_sources SET next_poll_at = now() + make_interval(secs => $1) \
                     WHERE feed_id IN (SELECT feed_id FROM feed_sources WHERE next_poll_at <= now() \
                       ORDER BY next_poll_at LIMIT 32 FOR UPDATE SKIP LOCKED) \
                     RETURNING feed_id, site_id, network_id, url, etag, last_modified, failures",
                    &[&interval],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|row| Source {
                    feed_id: row.get(0),
                    site_id: row.get(1),
                    network_id: row.get(2),
                    url: row.get(3),
                    etag: row.get(4),
                    last_modified: row.get(5),
                    failures: row.get(6),
                })
                .collect()
        };
        let count = sources.len();
        let results: Vec<Result<(), ContentError>> = futures::stream::iter(sources)
            .map(|source| async move { self.poll_one(source, config).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for result in results {
            result?;
        }
        Ok(count)
    }

    async fn poll_one(&self, source: Source, config: &FeedsConfig) -> Result<(), ContentError> {
        let fetched = fetch(
            &source.url,
            source.etag.as_deref(),
            source.last_modified.as_deref(),
            &config.fetch,
        )
        .await;
        let outcome = match fetched {
            Ok(Fetched::NotModified) => Ok((source.etag.clone(), source.last_modified.clone())),
            Ok(Fetched::Body {
                bytes,
                etag,
                last_modified,
            }) => match parse_items(&bytes, Utc::now()) {
                Ok(items) => {
                    let added = self.ingest(&source, &items).await?;
                    if added > 0 {
                        info!(url = %source.url, added, "feed items ingested");
                    }
                    Ok((etag, last_modified))
                }
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let client = self.pool().await?;
        match outcome {
            Ok((etag, last_modified)) => {
                client
                    .execute(
                        "UPDATE feed_sources SET etag = $2, last_modified = $3, \
                         last_polled_at = now(), last_error = '', failures = 0 WHERE feed_id = $1",
                        &[&source.feed_id, &etag, &last_modified],
                    )
                    .await
                    .map_err(db)?;
            }
            Err(error) => {
                warn!(url = %source.url, %error, "feed poll failed");
                let backoff = config.interval.as_secs_f64()
                    * f64::from(2u32.pow(source.failures.clamp(0, 4) as u32));
                let error: String = error.chars().take(500).collect();
                client
                    .execute(
                        "UPDATE feed_sources SET last_polled_at = now(), last_error = $2, \
                         failures = failures + 1, next_poll_at = now() + make_interval(secs => $3) \
                         WHERE feed_id = $1",
                        &[&source.feed_id, &error, &backoff],
                    )
                    .await
                    .map_err(db)?;
            }
        }
        Ok(())
    }

    /// Records the items not seen before, each with its event, in one
    /// transaction; returns how many were new.
    async fn ingest(&self, source: &Source, items: &[Item]) -> Result<usize, ContentError> {
        let mut client = self.pool().await?;
        let tx = client.transaction().await.map_err(db)?;
        let mut added = 0;
        for item in items {
            let fresh = tx
                .query_opt(
                    "INSERT INTO feed_items (feed_id, item_key, site_id, network_id, feed_url, \
                       title, link, summary_html, author, published_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (feed_id, item_key) DO NOTHING RETURNING 1",
                    &[
                        &source.feed_id,
                        &item.key,
                        &source.site_id,
                        &source.network_id,
                        &source.url,
                        &item.title,
                        &item.link,
                        &item.summary_html,
                        &item.author,
                        &item.published_at,
                    ],
                )
                .await
                .map_err(db)?
                .is_some();
            if !fresh {
                continue;
            }
            let event = NewEvent::new(
                "ExternalItemIngested",
                source.network_id,
                "feed-reader",
                ExternalItemIngested {
                    feed_id: source.feed_id.to_string(),
                    feed_url: source.url.clone(),
                    network_id: source.network_id.to_string(),
                    site_id: source.site_id.to_string(),
                    item_key: item.key.clone(),
                    title: item.title.clone(),
                    link: item.link.clone(),
                    summary_html: item.summary_html.clone(),
                    published_at: Some(anp_kit::timestamp(item.published_at)),
                    author: item.author.clone(),
                }
                .encode_to_vec(),
            )
            .with_site(source.site_id);
            anp_eventstore::append_in(
                &*tx,
                &format!("feed-{}", source.feed_id),
                ExpectedVersion::Any,
                &[event],
            )
            .await?;
            added += 1;
        }
        tx.commit().await.map_err(db)?;
        Ok(added)
    }

    async fn site_of(&self, network_slug: &str, site_slug: &str) -> Result<Uuid, ContentError> {
        anp_kit::check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
        anp_kit::check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
        self.access(
            None,
            Scope {
                network_slug: network_slug.to_owned(),
                site_slug: site_slug.to_owned(),
                site_id: String::new(),
            },
        )
        .await?
        .site
        .unwrap_or_default()
        .id
        .parse()
        .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))
    }

    pub async fn list_feed_items(
        &self,
        request: &ListFeedItemsRequest,
    ) -> Result<ListFeedItemsResponse, ContentError> {
        let limit = match request.limit {
            0 => 20,
            limit if limit <= 100 => i64::from(limit),
            _ => return Err(ContentError::Invalid("limit: at most 100".into())),
        };
        let site_id = self
            .site_of(&request.network_slug, &request.site_slug)
            .await?;
        let client = self.pool().await?;
        let rows = client
            .query(
                "SELECT feed_url, title, link, summary_html, published_at, author FROM feed_items \
                 WHERE site_id = $1 ORDER BY published_at DESC, item_key LIMIT $2",
                &[&site_id, &limit],
            )
            .await
            .map_err(db)?;
        Ok(ListFeedItemsResponse {
            items: rows
                .iter()
                .map(|row| FeedItem {
                    feed_url: row.get(0),
                    title: row.get(1),
                    link: row.get(2),
                    summary_html: row.get(3),
                    published_at: Some(anp_kit::timestamp(row.get(4))),
                    author: row.get(5),
                })
                .collect(),
        })
    }

    pub async fn list_site_feeds(
        &self,
        request: &ListFeedItemsRequest,
    ) -> Result<ListSiteFeedsResponse, ContentError> {
        let site_id = self
            .site_of(&request.network_slug, &request.site_slug)
            .await?;
        let client = self.pool().await?;
        let rows = client
            .query(
                "SELECT f.url, f.last_polled_at, f.last_error, f.failures, \
                   (SELECT count(*) FROM feed_items i WHERE i.feed_id = f.feed_id) \
                 FROM feed_sources f WHERE f.site_id = $1 ORDER BY f.url",
                &[&site_id],
            )
            .await
            .map_err(db)?;
        Ok(ListSiteFeedsResponse {
            feeds: rows
                .iter()
                .map(|row| SiteFeed {
                    url: row.get(0),
                    last_polled_at: row
                        .get::<_, Option<DateTime<Utc>>>(1)
                        .map(anp_kit::timestamp),
                    last_error: row.get(2),
                    failures: row.get::<_, i32>(3).max(0) as u32,
                    items: row.get::<_, i64>(4).max(0) as u32,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_cleaned() {
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title>Hello &lt;b&gt;world&lt;/b&gt;</title><guid>a1</guid>
            <link>javascript:alert(1)</link>
            <description>&lt;script&gt;alert(1)&lt;/script&gt;&lt;p onclick="x"&gt;Hi&lt;/p&gt;</description>
            <pubDate>Sun, 06 Sep 2009 16:20:00 +0000</pubDate></item></channel></rss>"#;
        let items = parse_items(rss, Utc::now()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "a1");
        assert!(!items[0].title.contains('<'), "{}", items[0].title);
        assert!(items[0].link.is_empty(), "javascript links dropped");
        assert!(
            !items[0].summary_html.contains("script"),
            "{}",
            items[0].summary_html
        );
        assert!(parse_items(b"<rss><channel>", Utc::now()).is_err());
    }
}
