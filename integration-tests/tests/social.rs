//! Linked social feeds: fixture servers on loopback serve good feeds (RSS,
//! Atom, JSON Feed, with conditional GET) and hostile ones (broken, huge,
//! slow, entity expansion); good items are shown once, bad feeds are
//! recorded as errors and never stop the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anp_proto::content::v1::{ListFeedItemsRequest, SiteFeed};
use anp_proto::sites::v1::UpdateSiteRequest;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::flow::get_text;
use crate::harness::{Stack, count, eventually, with_token};
use crate::people::{create_site, scope, settings};

const WAIT: Duration = Duration::from_secs(20);

const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Radio</title><link>https://radio.example.org/</link>
<item><title>Strike fund reaches its goal</title><guid>rss-1</guid>
<link>https://radio.example.org/1</link><description>&lt;p&gt;Thank you &lt;b&gt;all&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>Mon, 02 Nov 2026 10:00:00 +0000</pubDate></item>
<item><title>Assembly on Thursday</title><guid>rss-2</guid>
<link>https://radio.example.org/2</link><description>Bring a friend</description>
<pubDate>Tue, 03 Nov 2026 10:00:00 +0000</pubDate></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Mastodon</title><id>urn:feed</id>
<updated>2026-11-04T10:00:00Z</updated>
<entry><title>Toot about the march</title><id>urn:toot:1</id>
<link href="https://social.example.org/@radio/1"/><updated>2026-11-04T10:00:00Z</updated>
<summary>See you there</summary></entry></feed>"#;

const JSON_FEED: &str = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "Blog",
"items": [{"id": "json-1", "title": "Notes from the assembly",
"url": "https://blog.example.org/notes", "content_text": "Minutes",
"date_published": "2026-11-05T10:00:00Z"}]}"#;

const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><guid>lol</guid></item></channel></rss>"#;

/// The fixture server: its address, and how many 304s `/rss` answered.
async fn fixtures() -> (String, Arc<AtomicUsize>) {
    let not_modified = Arc::new(AtomicUsize::new(0));
    let counted = not_modified.clone();
    let app = axum::Router::new()
        .route(
            "/rss",
            get(move |headers: HeaderMap| {
                let counted = counted.clone();
                async move {
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok())
                        == Some("\"v1\"")
                    {
                        counted.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    ([(header::ETAG, "\"v1\"")], RSS).into_response()
                }
            }),
        )
        .route("/atom", get(|| async { ATOM }))
        .route("/json", get(|| async { JSON_FEED }))
        .route(
            "/broken",
            get(|| async { "<rss><channel><item><title>unclosed" }),
        )
        .route("/huge", get(|| async { vec![b'x'; 3 * 1024 * 1024] }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                RSS
            }),
        )
        .route("/laughs", get(|| async { LAUGHS }))
        .route("/gone", get(|| async { StatusCode::NOT_FOUND }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), not_modified)
}

async fn feeds(stack: &Stack) -> Vec<SiteFeed> {
    stack
        .content()
        .list_site_feeds(ListFeedItemsRequest {
            network_slug: "media".into(),
            site_slug: "radio".into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .feeds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linked_feeds_are_read_once_and_hostile_ones_recorded_without_stopping_the_others() {
    let stack = Stack::start().await;
    let (base, not_modified) = fixtures().await;
    stack.onboard("media", "Media").await;
    let admin = stack.admin("media");
    create_site(&stack, &admin, "media", "radio", "")
        .await
        .unwrap();
    let paths = [
        "rss", "atom", "json", "broken", "huge", "slow", "laughs", "gone",
    ];
    let mut radio = settings("Radio");
    radio.feed_urls = paths.iter().map(|path| format!("{base}/{path}")).collect();
    stack
        .sites()
        .update_site(with_token(
            UpdateSiteRequest {
                site: scope("media", "radio"),
                settings: Some(radio),
            },
            &admin,
        ))
        .await
        .unwrap();

    // Every feed polled: the good ones with items, the bad ones with errors.
    let polled = eventually(WAIT, "every feed polled", || async {
        let feeds = feeds(&stack).await;
        (feeds.len() == paths.len() && feeds.iter().all(|feed| feed.last_polled_at.is_some()))
            .then_some(feeds)
    })
    .await;
    let by_path = |path: &str| {
        polled
            .iter()
            .find(|feed| feed.url.ends_with(&format!("/{path}")))
            .unwrap()
            .clone()
    };
    for (path, items) in [("rss", 2), ("atom", 1), ("json", 1)] {
        let feed = by_path(path);
        assert_eq!(
            (feed.last_error.as_str(), feed.items),
            ("", items),
            "{path}"
        );
    }
    for (path, error) in [
        ("broken", "not a feed"),
        ("huge", "larger than"),
        ("slow", "no answer within"),
        ("gone", "404"),
    ] {
        let feed = by_path(path);
        assert!(
            feed.last_error.contains(error),
            "{path}: {:?}",
            feed.last_error
        );
        assert_eq!(feed.items, 0, "{path}");
    }
    // Entity expansion: refused, or harmless (nothing big taken in).
    let laughs = by_path("laughs");
    assert!(laughs.items <= 1, "{laughs:?}");

    // Items newest first, cleaned.
    let items = stack
        .content()
        .list_feed_items(ListFeedItemsRequest {
            network_slug: "media".into(),
            site_slug: "radio".into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let titles: Vec<&str> = items
        .iter()
        .filter(|item| !item.feed_url.ends_with("/laughs"))
        .map(|item| item.title.as_str())
        .collect();
    assert_eq!(
        titles,
        vec![
            "Notes from the assembly",
            "Toot about the march",
            "Assembly on Thursday",
            "Strike fund reaches its goal"
        ]
    );
    let thanks = items
        .iter()
        .find(|item| item.link == "https://radio.example.org/1")
        .unwrap();
    assert_eq!(thanks.summary_html, "Thank you all");
    assert!(items.iter().all(|item| item.title.len() <= 300 * 4));

    // Polled again: conditional GET answered 304, nothing taken twice.
    eventually(WAIT, "two conditional GETs answered 304", || async {
        (not_modified.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    let ingested = count(
        &stack,
        "SELECT count(*) FROM content.events WHERE event_type = 'ExternalItemIngested'",
    )
    .await;
    assert_eq!(ingested, items.len() as i64, "each item once");

    // Shown on the site's page.
    let (status, page) = get_text(&stack.http("/n/media/radio")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Toot about the march"), "{page}");
    stack.stop().await;
}
