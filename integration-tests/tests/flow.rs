//! The walking skeleton end to end: onboard, create a site, publish, and
//! find the post in every feed, every Atom feed and in search.

use std::str::FromStr;
use std::time::Duration;

use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest, SearchRequest};
use anp_proto::content::v1::{EditPostRequest, PublishPostRequest};
use anp_proto::ops::v1::{ListNetworksRequest, OnboardNetworkRequest};
use anp_proto::sites::v1::CreateSiteRequest;

use crate::harness::{Stack, authorized, eventually, with_token};

pub async fn onboard(stack: &Stack, slug: &str, name: &str) {
    stack.onboard(slug, name).await;
}

/// Creates a top-level site as the network's admin.
pub async fn create_site(stack: &Stack, network: &str, slug: &str, name: &str) {
    stack
        .sites()
        .create_site(with_token(
            CreateSiteRequest {
                network_slug: network.into(),
                slug: slug.into(),
                name: name.into(),
                ..Default::default()
            },
            &stack.admin(network),
        ))
        .await
        .expect("create site");
}

pub async fn publish(
    stack: &Stack,
    network: &str,
    site: &str,
    title: &str,
    body: &str,
    lang: &str,
) -> String {
    stack
        .content()
        .publish_post(with_token(
            PublishPostRequest {
                network_slug: network.into(),
                site_slug: site.into(),
                title: title.into(),
                body_markdown: body.into(),
                lang: lang.into(),
                ..Default::default()
            },
            &stack.admin(network),
        ))
        .await
        .expect("publish")
        .into_inner()
        .id
}

pub async fn feed_ids(stack: &Stack, network: &str, site: &str) -> Vec<String> {
    paged_feed_ids(stack, network, site, 100).await
}

/// Every entry of a feed, page by page; checks no page is over `limit`.
pub async fn paged_feed_ids(stack: &Stack, network: &str, site: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = stack
            .aggregator()
            .get_feed(GetFeedRequest {
                scope: Some(FeedScope {
                    network_slug: network.into(),
                    site_slug: site.into(),
                    ..Default::default()
                }),
                cursor: cursor.clone(),
                limit,
            })
            .await
            .expect("get feed")
            .into_inner();
        assert!(page.entries.len() <= limit as usize, "page over the limit");
        ids.extend(page.entries.into_iter().map(|entry| entry.id));
        if page.next_cursor.is_empty() {
            return ids;
        }
        cursor = page.next_cursor;
    }
}

pub async fn search_ids(stack: &Stack, query: &str, network: &str) -> Vec<String> {
    stack
        .aggregator()
        .search(SearchRequest {
            query: query.into(),
            network_slug: network.into(),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner()
        .hits
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

pub async fn get_text(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("http get");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn atom_entry_ids(xml: &str) -> Vec<String> {
    let feed = atom_syndication::Feed::from_str(xml).expect("valid Atom");
    assert!(!feed.id().is_empty(), "feed id");
    assert!(
        feed.links().iter().any(|link| link.rel() == "self"),
        "self link"
    );
    feed.entries()
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_reaches_every_feed_atom_and_search() {
    let stack = Stack::start().await;
    let wait = Duration::from_secs(15);

    // Onboarding is idempotent on its key.
    let first = stack.onboard("climate", "Climate Justice").await;
    assert!(first.created);
    let retry = stack
        .ops()
        .onboard_network(authorized(OnboardNetworkRequest {
            slug: "climate".into(),
            name: "Climate Justice".into(),
            idempotency_key: "key-climate".into(),
            admin_email: "admin@climate.example.org".into(),
            ..Default::default()
        }))
        .await
        .expect("retried onboard")
        .into_inner();
    assert!(!retry.created);
    assert_eq!(
        first.network.as_ref().unwrap().id,
        retry.network.as_ref().unwrap().id
    );
    onboard(&stack, "migrants", "Migrant Rights").await;
    let networks = stack
        .ops()
        .list_networks(authorized(ListNetworksRequest {}))
        .await
        .unwrap()
        .into_inner()
        .networks;
    assert_eq!(networks.len(), 2, "{networks:?}");

    create_site(&stack, "climate", "new-york", "New York").await;
    create_site(&stack, "climate", "madrid", "Madrid").await;
    create_site(&stack, "migrants", "boston", "Boston").await;

    let english = publish(
        &stack,
        "climate",
        "new-york",
        "Rally at City Hall",
        "Bring **signs** and friends to the rally for clean air.",
        "en",
    )
    .await;
    let spanish = publish(
        &stack,
        "climate",
        "madrid",
        "Marcha por el clima",
        "Las organizaciones vecinales convocan una marcha el domingo.",
        "es",
    )
    .await;
    let other_network = publish(
        &stack,
        "migrants",
        "boston",
        "Know your rights",
        "A rally of lawyers.",
        "en",
    )
    .await;

    // Feeds at all three levels.
    for (network, site, expected, absent) in [
        ("", "", vec![&english, &spanish, &other_network], vec![]),
        (
            "climate",
            "",
            vec![&english, &spanish],
            vec![&other_network],
        ),
        (
            "climate",
            "new-york",
            vec![&english],
            vec![&spanish, &other_network],
        ),
    ] {
        let ids = eventually(wait, &format!("feed {network}/{site}"), || async {
            let ids = feed_ids(&stack, network, site).await;
            expected.iter().all(|id| ids.contains(id)).then_some(ids)
        })
        .await;
        for id in absent {
            assert!(
                !ids.contains(id),
                "{id} must not be in feed {network}/{site}"
            );
        }
    }
    // Newest first.
    let umbrella = feed_ids(&stack, "", "").await;
    assert_eq!(
        umbrella,
        vec![other_network.clone(), spanish.clone(), english.clone()]
    );

    // Search: English word, Spanish stem (singular finds plural), network filter.
    let found = eventually(wait, "search for rally", || async {
        let ids = search_ids(&stack, "rally", "").await;
        (ids.len() == 2).then_some(ids)
    })
    .await;
    assert!(found.contains(&english) && found.contains(&other_network));
    assert_eq!(
        search_ids(&stack, "rally", "climate").await,
        vec![english.clone()]
    );
    assert_eq!(
        search_ids(&stack, "organización", "").await,
        vec![spanish.clone()]
    );
    assert_eq!(
        search_ids(&stack, "marchas", "climate").await,
        vec![spanish.clone()]
    );
    assert!(search_ids(&stack, "marcha", "migrants").await.is_empty());

    // HTML pages.
    for path in ["/", "/n/climate", "/n/climate/new-york"] {
        let (status, body) = get_text(&stack.http(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("Rally at City Hall"), "{path} shows the post");
        assert!(body.contains("name=\"viewport\""), "{path} is phone-ready");
    }
    // minijinja escapes `/` in attributes as `&#x2f;`.
    let (_, front) = get_text(&stack.http("/")).await;
    let front = front.replace("&#x2f;", "/");
    assert!(
        front.contains("href=\"/n/migrants\"") && front.contains("Migrant Rights"),
        "umbrella lists the movements"
    );
    let (_, network_page) = get_text(&stack.http("/n/climate")).await;
    let network_page = network_page.replace("&#x2f;", "/");
    assert!(
        network_page.contains("href=\"/n/climate/madrid\""),
        "network page lists its sites"
    );
    let (status, body) = get_text(&stack.http("/n/climate/madrid")).await;
    assert_eq!(status, 200);
    assert!(body.contains("Marcha por el clima") && !body.contains("Rally at City Hall"));
    let (status, body) =
        get_text(&stack.http(&format!("/n/climate/new-york/posts/{english}"))).await;
    assert_eq!(status, 200);
    assert!(body.contains("<strong>signs</strong>"));
    let (status, body) = get_text(&stack.http("/search?q=organizaci%C3%B3n")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Marcha por el clima"),
        "search page shows the Spanish post"
    );
    assert!(body.contains("<html lang=\"en\">") && body.contains("for “organización”"));
    // A reader whose browser asks for Spanish reads the pages' own words in
    // Spanish; what people wrote is shown as written.
    let in_spanish = |path: &str| {
        let url = stack.http(path);
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("accept-language", "es-AR,es;q=0.9,en;q=0.5")
                .send()
                .await
                .expect("http get");
            assert_eq!(response.status().as_u16(), 200);
            assert_eq!(response.headers()["content-language"], "es");
            response.text().await.expect("body")
        }
    };
    let body = in_spanish("/search?q=organizaci%C3%B3n").await;
    assert!(body.contains("<html lang=\"es\">"), "{body}");
    assert!(
        body.contains("resultado") && body.contains("para «organización»"),
        "{body}"
    );
    assert!(body.contains("aria-label=\"Afinar los resultados\""));
    assert!(body.contains("Marcha por el clima") && body.contains("entrada ·"));
    assert!(body.contains("<time datetime=\""), "a hit shows its date");
    let front = in_spanish("/").await;
    assert!(front.contains("<h2>Movimientos</h2>") && front.contains("Últimas entradas"));
    assert!(
        front.contains("<title>Test Umbrella</title>"),
        "the name once"
    );

    // Atom feeds at every level are valid and hold the post.
    let urn = format!("urn:uuid:{english}");
    for path in [
        "/feed.atom",
        "/n/climate/feed.atom",
        "/n/climate/new-york/feed.atom",
    ] {
        let response = reqwest::get(stack.http(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/atom+xml"),
            "{path}: {content_type}"
        );
        assert!(
            !response.headers().contains_key("content-language"),
            "{path}: a feed is the same in every language"
        );
        let ids = atom_entry_ids(&response.text().await.unwrap());
        assert!(ids.contains(&urn), "{path} holds the post");
    }
    let (_, site_atom) = get_text(&stack.http("/n/climate/madrid/feed.atom")).await;
    assert!(!atom_entry_ids(&site_atom).contains(&urn));

    // An edit reaches feeds and search; the old words are gone.
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: english.clone(),
                expected_version: 1,
                title: "Picnic at City Hall".into(),
                body_markdown: "A picnic instead of a march.".into(),
                lang: String::new(),
                ..Default::default()
            },
            &stack.admin("climate"),
        ))
        .await
        .expect("edit");
    eventually(wait, "edited post in search", || async {
        let ids = search_ids(&stack, "picnic", "").await;
        (ids == vec![english.clone()]).then_some(())
    })
    .await;
    assert_eq!(
        search_ids(&stack, "rally", "").await,
        vec![other_network.clone()]
    );
    let (_, body) = get_text(&stack.http("/n/climate/new-york")).await;
    assert!(body.contains("Picnic at City Hall") && !body.contains("Rally at City Hall"));
    assert_eq!(
        feed_ids(&stack, "", "").await.len(),
        3,
        "an edit adds no entry"
    );

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feed_pages_by_cursor_without_gaps_or_duplicates() {
    let stack = Stack::start().await;
    onboard(&stack, "labor", "Labor").await;
    create_site(&stack, "labor", "docks", "Docks").await;
    let mut published = Vec::new();
    for number in 0..45 {
        published.push(
            publish(
                &stack,
                "labor",
                "docks",
                &format!("Shift report {number}"),
                "On strike.",
                "en",
            )
            .await,
        );
    }
    let ids = eventually(Duration::from_secs(15), "45 posts in the feed", || async {
        let ids = paged_feed_ids(&stack, "labor", "", 10).await;
        (ids.len() == 45).then_some(ids)
    })
    .await;
    published.reverse();
    assert_eq!(ids, published, "newest first, every post once");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renamed_site_keeps_its_posts_and_its_old_links() {
    use anp_proto::sites::v1::{RenameSiteRequest, Scope};
    let stack = Stack::start().await;
    let wait = Duration::from_secs(15);
    onboard(&stack, "tenants", "Tenants").await;
    create_site(&stack, "tenants", "chicago", "Chicago").await;
    let post = publish(
        &stack,
        "tenants",
        "chicago",
        "Rent strike",
        "Thursday",
        "en",
    )
    .await;
    eventually(wait, "the post in the site's feed", || async {
        (feed_ids(&stack, "tenants", "chicago").await == vec![post.clone()]).then_some(())
    })
    .await;
    stack
        .sites()
        .rename_site(with_token(
            RenameSiteRequest {
                site: Some(Scope {
                    network_slug: "tenants".into(),
                    site_slug: "chicago".into(),
                    site_id: String::new(),
                }),
                new_slug: "chicago-il".into(),
                new_name: "Chicago, IL".into(),
            },
            &stack.admin("tenants"),
        ))
        .await
        .expect("rename");
    let new_link = format!("/n/tenants/chicago-il/posts/{post}");
    eventually(
        wait,
        "the site page under its new slug with new links",
        || async {
            let (status, body) = get_text(&stack.http("/n/tenants/chicago-il")).await;
            let body = body.replace("&#x2f;", "/");
            (status == 200 && body.contains(&new_link) && body.contains("Chicago, IL"))
                .then_some(())
        },
    )
    .await;
    // Old links lead to the new ones.
    let old_site = reqwest::get(stack.http("/n/tenants/chicago"))
        .await
        .unwrap();
    assert_eq!(old_site.status(), 200);
    assert!(
        old_site.url().path().ends_with("/n/tenants/chicago-il"),
        "{}",
        old_site.url()
    );
    let old_post = reqwest::get(stack.http(&format!("/n/tenants/chicago/posts/{post}")))
        .await
        .unwrap();
    assert_eq!(old_post.status(), 200);
    assert_eq!(old_post.url().path(), new_link);
    // An edit after the rename keeps one entry per timeline.
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: post.clone(),
                expected_version: 0,
                title: "Rent strike, day two".into(),
                body_markdown: "Friday".into(),
                lang: String::new(),
                ..Default::default()
            },
            &stack.admin("tenants"),
        ))
        .await
        .expect("edit");
    eventually(wait, "the edit in the site's feed", || async {
        let (_, body) = get_text(&stack.http("/n/tenants/chicago-il")).await;
        body.contains("Rent strike, day two").then_some(())
    })
    .await;
    assert_eq!(
        feed_ids(&stack, "tenants", "chicago-il").await,
        vec![post.clone()]
    );
    assert_eq!(feed_ids(&stack, "tenants", "").await, vec![post.clone()]);
    // A post does not show under another site's slug.
    create_site(&stack, "tenants", "denver", "Denver").await;
    let (status, _) = get_text(&stack.http(&format!("/n/tenants/denver/posts/{post}"))).await;
    assert_eq!(status, 404);
    stack.stop().await;
}
