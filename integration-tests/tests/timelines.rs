//! Timelines by tag and by language across networks, in every format (HTML,
//! Atom, JSON Feed 1.1), with entity tags and 304s.

use std::str::FromStr;
use std::time::Duration;

use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest};
use anp_proto::content::v1::{EditPostRequest, PublishPostRequest};
use tonic::Code;

use crate::flow::{create_site, get_text, onboard};
use crate::harness::{Stack, count, eventually, expect_error, with_token};

async fn publish(
    stack: &Stack,
    network: &str,
    site: &str,
    title: &str,
    lang: &str,
    tags: &[&str],
) -> String {
    stack
        .content()
        .publish_post(with_token(
            PublishPostRequest {
                network_slug: network.into(),
                site_slug: site.into(),
                title: title.into(),
                body_markdown: format!("About {title}"),
                lang: lang.into(),
                tags: tags.iter().map(|tag| tag.to_string()).collect(),
                ..Default::default()
            },
            &stack.admin(network),
        ))
        .await
        .expect("publish")
        .into_inner()
        .id
}

async fn timeline(stack: &Stack, scope: FeedScope) -> Result<Vec<String>, tonic::Status> {
    Ok(stack
        .aggregator()
        .get_feed(GetFeedRequest {
            scope: Some(scope),
            cursor: String::new(),
            limit: 50,
        })
        .await?
        .into_inner()
        .entries
        .into_iter()
        .map(|entry| entry.id)
        .collect())
}

fn tag(tag: &str) -> FeedScope {
    FeedScope {
        tag: tag.into(),
        ..Default::default()
    }
}

fn lang(lang: &str) -> FeedScope {
    FeedScope {
        lang: lang.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_and_languages_have_timelines_across_networks_in_every_format() {
    let stack = Stack::start().await;
    onboard(&stack, "tenants", "Tenants").await;
    onboard(&stack, "migrants", "Migrants").await;
    create_site(&stack, "tenants", "chicago", "Chicago").await;
    create_site(&stack, "migrants", "lisbon", "Lisboa").await;
    let rent = publish(
        &stack,
        "tenants",
        "chicago",
        "Rent strike",
        "en",
        &["housing"],
    )
    .await;
    let casa = publish(
        &stack,
        "migrants",
        "lisbon",
        "Casa para todos",
        "pt",
        &["housing", "migração"],
    )
    .await;
    let other = publish(
        &stack,
        "migrants",
        "lisbon",
        "Aulas de português",
        "pt",
        &[],
    )
    .await;
    let wait = Duration::from_secs(15);

    // One timeline per tag and per language, newest first, across networks.
    let (expected_tag, expected_lang) = (
        vec![casa.clone(), rent.clone()],
        vec![other.clone(), casa.clone()],
    );
    eventually(wait, "tag and language timelines", || async {
        let by_tag = timeline(&stack, tag("housing")).await.ok()?;
        let by_lang = timeline(&stack, lang("pt")).await.ok()?;
        (by_tag == expected_tag && by_lang == expected_lang).then_some(())
    })
    .await;
    assert_eq!(
        timeline(&stack, tag("migração")).await.unwrap(),
        vec![casa.as_str()]
    );
    assert!(timeline(&stack, lang("es")).await.unwrap().is_empty());
    for (scope, field) in [
        (
            FeedScope {
                tag: "housing".into(),
                network_slug: "tenants".into(),
                ..Default::default()
            },
            "scope.tag",
        ),
        (tag("Not A Tag"), "scope.tag"),
        (lang("xx"), "scope.lang"),
        (
            FeedScope {
                lang: "pt".into(),
                site_id: "x".into(),
                ..Default::default()
            },
            "scope.lang",
        ),
    ] {
        expect_error(timeline(&stack, scope).await, Code::InvalidArgument, field);
    }

    // The same on the web: a page, Atom and JSON Feed (read by independent
    // parsers).
    let (status, html) = get_text(&stack.http("/tags/housing")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Rent strike") && html.contains("Casa para todos"));
    let (status, json) = get_text(&stack.http("/tags/housing/feed.json")).await;
    assert_eq!(status, 200);
    let parsed = feed_rs::parser::parse(json.as_bytes()).expect("valid JSON Feed");
    let ids: Vec<String> = parsed.entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        ids,
        [format!("urn:uuid:{casa}"), format!("urn:uuid:{rent}")]
    );
    let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(raw["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(raw["items"][0]["language"], "pt");
    let (status, atom) = get_text(&stack.http("/lang/pt/feed.atom")).await;
    assert_eq!(status, 200);
    let feed = atom_syndication::Feed::from_str(&atom).expect("valid Atom");
    assert_eq!(feed.entries().len(), 2);
    let (status, site_json) = get_text(&stack.http("/n/migrants/lisbon/feed.json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        feed_rs::parser::parse(site_json.as_bytes())
            .unwrap()
            .entries
            .len(),
        2
    );
    for missing in [
        "/lang/xx",
        "/tags/Bad%20Tag",
        "/colors/red",
        "/lang/xx/feed.json",
    ] {
        assert_eq!(get_text(&stack.http(missing)).await.0, 404, "{missing}");
    }

    // Entity tags: unchanged → 304 with no body; a new post → a new tag.
    let client = reqwest::Client::new();
    let url = stack.http("/lang/pt/feed.json");
    let first = client.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let again = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());
    let newer = publish(&stack, "migrants", "lisbon", "Nova reunião", "pt", &[]).await;
    eventually(wait, "a new entity tag after a new post", || async {
        let response = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .ok()?;
        (response.status() == 200 && response.text().await.ok()?.contains(&newer)).then_some(())
    })
    .await;
    stack.stop().await;
}

/// A post the timelines take for new is written with plain inserts; should
/// its rows be there after all (the projection's tables disagreeing: here
/// its version row is gone), the batch is written again with upserts — the
/// projection neither stops nor doubles a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_already_there_do_not_stop_the_timelines() {
    let stack = Stack::start().await;
    onboard(&stack, "tenants", "Tenants").await;
    create_site(&stack, "tenants", "chicago", "Chicago").await;
    let rent = publish(&stack, "tenants", "chicago", "Rent strike", "en", &["rows"]).await;
    let wait = Duration::from_secs(15);
    let titles = || async {
        let entries = stack
            .aggregator()
            .get_feed(GetFeedRequest {
                scope: Some(tag("rows")),
                cursor: String::new(),
                limit: 50,
            })
            .await
            .ok()?
            .into_inner()
            .entries;
        Some(
            entries
                .into_iter()
                .map(|entry| (entry.id, entry.title))
                .collect::<Vec<_>>(),
        )
    };
    eventually(wait, "the post in its tag's timeline", || async {
        (titles().await? == vec![(rent.clone(), "Rent strike".to_owned())]).then_some(())
    })
    .await;
    let rows = format!("SELECT count(*) FROM aggregator.feed_timelines WHERE post_id = '{rent}'");
    let placed = count(&stack, &rows).await;
    assert_eq!(placed, 5, "umbrella, network, site, language and tag");
    stack
        .infra
        .pg()
        .await
        .execute(
            &format!("DELETE FROM aggregator.post_versions WHERE post_id = '{rent}'"),
            &[],
        )
        .await
        .expect("forget the post's version");

    // Its next version looks new: its rows conflict, and are upserted.
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: rent.clone(),
                title: "Rent strike: day two".into(),
                body_markdown: "About the strike".into(),
                ..Default::default()
            },
            &stack.admin("tenants"),
        ))
        .await
        .expect("edit");
    let later = publish(
        &stack,
        "tenants",
        "chicago",
        "Tenant union",
        "en",
        &["rows"],
    )
    .await;
    eventually(
        wait,
        "the edit and a later post in the timeline",
        || async {
            (titles().await?
                == vec![
                    (later.clone(), "Tenant union".to_owned()),
                    (rent.clone(), "Rent strike: day two".to_owned()),
                ])
            .then_some(())
        },
    )
    .await;
    assert_eq!(count(&stack, &rows).await, placed, "no row doubled or lost");
    assert_eq!(
        count(
            &stack,
            &format!("SELECT version FROM aggregator.post_versions WHERE post_id = '{rent}'")
        )
        .await,
        2,
        "the version is known again"
    );
    stack.stop().await;
}
