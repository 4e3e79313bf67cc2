//! Search at query time: members-only posts and threads are found by their
//! members only — never counted or faceted for anybody else — and pages of
//! hits follow each other without duplicates or gaps while writes go on.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use anp_proto::aggregator::v1::{SearchRequest, SearchResponse};
use anp_proto::content::v1::{PublishPostRequest, StartThreadRequest};
use anp_proto::sites::v1::Role;
use tonic::Code;

use crate::harness::{Stack, eventually, expect_error, with_token};
use crate::people::{accept, create_site, invite};

const WAIT: Duration = Duration::from_secs(30);

async fn post(
    stack: &Stack,
    token: &str,
    network: &str,
    site: &str,
    title: &str,
    visibility: &str,
    tags: &[&str],
) -> String {
    stack
        .content()
        .publish_post(with_token(
            PublishPostRequest {
                network_slug: network.into(),
                site_slug: site.into(),
                title: title.into(),
                body_markdown: format!("{title}: solidarity across borders"),
                lang: "en".into(),
                visibility: visibility.into(),
                tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap_or_else(|err| panic!("publish {title}: {err}"))
        .into_inner()
        .id
}

async fn thread(stack: &Stack, token: &str, network: &str, site: &str, title: &str) -> String {
    stack
        .content()
        .start_thread(with_token(
            StartThreadRequest {
                network_slug: network.into(),
                site_slug: site.into(),
                title: title.into(),
                body_markdown: format!("{title}: solidarity across borders"),
                visibility: String::new(), // members only
                lang: "en".into(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|err| panic!("thread {title}: {err}"))
        .into_inner()
        .id
}

async fn search_as(stack: &Stack, token: Option<&str>, request: SearchRequest) -> SearchResponse {
    let request = match token {
        Some(token) => with_token(request, token),
        None => tonic::Request::new(request),
    };
    stack
        .aggregator()
        .search(request)
        .await
        .unwrap()
        .into_inner()
}

fn query(words: &str) -> SearchRequest {
    SearchRequest {
        query: words.into(),
        limit: 100,
        facets: true,
        ..Default::default()
    }
}

/// Titles found, and each facet as `value → count`.
fn found(response: &SearchResponse) -> (BTreeSet<String>, BTreeMap<String, BTreeMap<String, u64>>) {
    let titles = response.hits.iter().map(|hit| hit.title.clone()).collect();
    let facets = response
        .facets
        .iter()
        .map(|facet| {
            (
                facet.field.clone(),
                facet
                    .values
                    .iter()
                    .map(|value| (value.value.clone(), value.count))
                    .collect(),
            )
        })
        .collect();
    (titles, facets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_only_documents_reach_their_members_and_nobody_else_not_even_in_counts() {
    let stack = Stack::start().await;
    stack.onboard("mig", "Migrant rights").await;
    stack.onboard("climate", "Climate").await;
    let mig = stack.admin("mig");
    let climate = stack.admin("climate");
    for (slug, parent) in [("boston", ""), ("arts", "boston"), ("nyc", "")] {
        create_site(&stack, &mig, "mig", slug, parent)
            .await
            .unwrap();
    }
    create_site(&stack, &climate, "climate", "coast", "")
        .await
        .unwrap();
    let outsider = stack.sign_up("outsider@example.org").await;
    let mut members = BTreeMap::new();
    for site in ["boston", "arts", "nyc"] {
        let token = stack.sign_up(&format!("{site}@example.org")).await;
        let invitation = invite(&stack, &mig, "mig", site, Role::Member, "")
            .await
            .unwrap();
        accept(&stack, &token, &invitation.token).await.unwrap();
        members.insert(site, token);
    }

    // Every document says "solidarity"; each title is one word of its own.
    post(
        &stack,
        &mig,
        "mig",
        "boston",
        "Publicpost",
        "public",
        &["rights"],
    )
    .await;
    post(
        &stack,
        &mig,
        "mig",
        "nyc",
        "Networkpost",
        "network",
        &["rights"],
    )
    .await;
    post(
        &stack,
        &mig,
        "mig",
        "boston",
        "Bostonpost",
        "site",
        &["safety"],
    )
    .await;
    post(&stack, &mig, "mig", "arts", "Artspost", "site", &[]).await;
    thread(&stack, &mig, "mig", "boston", "Bostonthread").await;
    thread(&stack, &mig, "mig", "", "Boardthread").await;
    post(
        &stack,
        &climate,
        "climate",
        "coast",
        "Climatepost",
        "public",
        &[],
    )
    .await;
    post(
        &stack,
        &climate,
        "climate",
        "coast",
        "Climateinternal",
        "network",
        &[],
    )
    .await;
    // A draft is nobody's hit, not even its author's.
    stack
        .content()
        .publish_post(with_token(
            PublishPostRequest {
                network_slug: "mig".into(),
                site_slug: "boston".into(),
                title: "Draftpost".into(),
                body_markdown: "solidarity draft".into(),
                lang: "en".into(),
                draft: true,
                ..Default::default()
            },
            &mig,
        ))
        .await
        .unwrap();

    eventually(WAIT, "every document indexed", || async {
        let mig_total = search_as(&stack, Some(&mig), query("solidarity"))
            .await
            .total;
        let climate_total = search_as(&stack, Some(&climate), query("solidarity"))
            .await
            .total;
        (mig_total == 7 && climate_total == 3).then_some(())
    })
    .await;

    let public = ["Publicpost", "Climatepost"];
    let table: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
        ("nobody", None, public.to_vec()),
        ("outsider", Some(&outsider), public.to_vec()),
        (
            "boston member (arts is a site of boston)",
            Some(&members["boston"]),
            [
                &public[..],
                &[
                    "Networkpost",
                    "Bostonpost",
                    "Artspost",
                    "Bostonthread",
                    "Boardthread",
                ],
            ]
            .concat(),
        ),
        (
            "arts member",
            Some(&members["arts"]),
            [&public[..], &["Networkpost", "Artspost", "Boardthread"]].concat(),
        ),
        (
            "nyc member",
            Some(&members["nyc"]),
            [&public[..], &["Networkpost", "Boardthread"]].concat(),
        ),
        (
            "mig admin",
            Some(&mig),
            [
                &public[..],
                &[
                    "Networkpost",
                    "Bostonpost",
                    "Artspost",
                    "Bostonthread",
                    "Boardthread",
                ],
            ]
            .concat(),
        ),
        (
            "climate admin",
            Some(&climate),
            [&public[..], &["Climateinternal"]].concat(),
        ),
    ];
    for (who, token, expected) in &table {
        let response = search_as(&stack, *token, query("solidarity")).await;
        let (titles, facets) = found(&response);
        let expected: BTreeSet<String> = expected.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(titles, expected, "{who}: hits");
        assert_eq!(response.total, expected.len() as u64, "{who}: total");
        // Facets count what this caller may read, and only that.
        let per_network: u64 = facets["network"].values().sum();
        assert_eq!(per_network, expected.len() as u64, "{who}: network facet");
        let per_kind: u64 = facets["kind"].values().sum();
        assert_eq!(per_kind, expected.len() as u64, "{who}: kind facet");
        let safety = u64::from(expected.contains("Bostonpost"));
        assert_eq!(
            facets["tag"].get("safety").copied().unwrap_or(0),
            safety,
            "{who}: tag facet"
        );
        // Asking for a hidden document by its own word finds nothing at
        // all: no hit, no count, no facet.
        for hidden in ["Bostonpost", "Bostonthread", "Climateinternal", "Draftpost"] {
            if expected.contains(hidden) {
                continue;
            }
            let response = search_as(&stack, *token, query(&hidden.to_lowercase())).await;
            assert_eq!(response.total, 0, "{who} must not find {hidden}");
            assert!(response.hits.is_empty());
            assert!(
                response.facets.iter().all(|facet| facet.values.is_empty()),
                "{who}: facets of {hidden}: {:?}",
                response.facets
            );
        }
    }

    // Filters narrow within what one may read; facets follow.
    let boston = search_as(
        &stack,
        Some(&members["boston"]),
        SearchRequest {
            network_slug: "mig".into(),
            site_slug: "boston".into(),
            ..query("solidarity")
        },
    )
    .await;
    assert_eq!(
        found(&boston).0,
        ["Publicpost", "Bostonpost", "Bostonthread"]
            .map(String::from)
            .into(),
    );
    assert_eq!(found(&boston).1["site"]["mig/boston"], 3);
    let tagged = search_as(
        &stack,
        None,
        SearchRequest {
            tag: "rights".into(),
            kind: "post".into(),
            ..query("solidarity")
        },
    )
    .await;
    assert_eq!(found(&tagged).0, ["Publicpost"].map(String::from).into());
    let members_hit = boston
        .hits
        .iter()
        .find(|hit| hit.title == "Bostonpost")
        .unwrap();
    assert_eq!(members_hit.visibility, "site");
    assert_eq!(members_hit.tags, vec!["safety"]);

    // The gateway searches as the session cookie's account.
    let client = reqwest::Client::new();
    let page = |cookie: Option<String>| {
        let mut request = client.get(stack.http("/api/search?q=solidarity&network=mig"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("anp_session={cookie}"));
        }
        async move {
            let json: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            json
        }
    };
    let anonymous = page(None).await;
    assert_eq!(anonymous["total"], 1, "{anonymous}");
    // A session that ended (or never was) searches as the public does.
    let stale = page(Some("not-a-session".into())).await;
    assert_eq!(stale["total"], 1, "{stale}");
    let member = page(Some(members["boston"].clone())).await;
    assert_eq!(member["total"], 6, "{member}");
    // A few hits are counted exactly, not estimated from a sample.
    assert_eq!(member["facets_are_estimates"], false, "{member}");
    let sites: Vec<&str> = member["facets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|facet| facet["field"] == "site")
        .unwrap()["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|value| value["value"].as_str())
        .collect();
    assert!(sites.contains(&"mig/arts"), "{sites:?}");
    // A page of the gateway as Boston's member.
    let as_member = |path: &str| {
        let request = client
            .get(stack.http(path))
            .header("cookie", format!("anp_session={}", members["boston"]));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let html = as_member("/search?q=solidarity").await;
    assert!(html.contains("Bostonpost") && html.contains("site members"));
    assert!(html.contains("data-facet=\"tag\" data-value=\"safety\""));
    let (status, _) = crate::flow::get_text(&stack.http("/search?q=solidarity")).await;
    assert_eq!(status, 200);
    let (_, html) = crate::flow::get_text(&stack.http("/search?q=solidarity")).await;
    assert!(!html.contains("Bostonpost") && !html.contains("safety"));
    assert!(
        html.replace("&#x2f;", "/")
            .contains("href=\"/search/feed.atom?q=solidarity\""),
        "the page links the feed of its search"
    );

    // The feed of a search, even fetched with a member's cookie, holds only
    // what the public may read: feed readers cache and share what they get.
    let public: Vec<String> = reqwest::get(stack.http("/api/search?q=solidarity"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(public.contains(&"Publicpost".to_owned()), "{public:?}");
    let atom = as_member("/search/feed.atom?q=solidarity").await;
    let feed = atom_syndication::Feed::from_str(&atom).expect("valid Atom");
    let mut titles: Vec<String> = feed
        .entries()
        .iter()
        .map(|entry| entry.title().value.clone())
        .collect();
    titles.sort();
    let mut expected = public.clone();
    expected.sort();
    assert_eq!(titles, expected);
    assert!(!atom.contains("Bostonpost"));
    let json: serde_json::Value =
        serde_json::from_str(&as_member("/search/feed.json?q=solidarity&network=mig").await)
            .unwrap();
    let titles: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["title"].as_str())
        .collect();
    assert_eq!(titles, ["Publicpost"], "{json}");
    let (status, body) = crate::flow::get_text(&stack.http("/search/feed.atom?q=+")).await;
    assert_eq!(status, 400);
    assert!(body.contains("q: required"), "{body}");
    stack.stop().await;
}

async fn ids_of_all_pages(stack: &Stack, sort: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    for _ in 0..50 {
        let response = search_as(
            stack,
            None,
            SearchRequest {
                query: "paging".into(),
                sort: sort.into(),
                limit,
                cursor: cursor.clone(),
                ..Default::default()
            },
        )
        .await;
        ids.extend(response.hits.into_iter().map(|hit| hit.id));
        if response.next_cursor.is_empty() {
            return ids;
        }
        cursor = response.next_cursor;
        // Writes go on between pages.
        let title = format!("Paging interloper {}", ids.len());
        crate::flow::publish(stack, "pages", "site", &title, "paging again", "en").await;
    }
    panic!("paging did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_pages_follow_each_other_without_duplicates_or_gaps_while_writes_continue() {
    let stack = Stack::start().await;
    stack.onboard("pages", "Pages").await;
    crate::flow::create_site(&stack, "pages", "site", "Site").await;
    let mut originals = BTreeSet::new();
    for n in 0..23 {
        // Different lengths: different scores.
        let body = format!("paging {}", "word ".repeat(n));
        originals.insert(
            crate::flow::publish(&stack, "pages", "site", &format!("Post {n}"), &body, "en").await,
        );
    }
    eventually(WAIT, "the posts indexed", || async {
        let total = search_as(&stack, None, query("paging")).await.total;
        (total == 23).then_some(())
    })
    .await;
    for sort in ["", "date"] {
        // What there is when the first page is asked for…
        let before = eventually(WAIT, "earlier writes indexed", || async {
            let response = search_as(&stack, None, query("paging")).await;
            (response.total as usize == response.hits.len()
                && response.hits.len() >= originals.len())
            .then(|| {
                response
                    .hits
                    .into_iter()
                    .map(|hit| hit.id)
                    .collect::<BTreeSet<String>>()
            })
        })
        .await;
        assert!(before.is_superset(&originals));
        let ids = ids_of_all_pages(&stack, sort, 5).await;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "sort {sort:?}: duplicates in {ids:?}"
        );
        // …is what the pages hold: no gaps, and nothing written since.
        assert_eq!(unique, before, "sort {sort:?}");
    }
    // A cursor belongs to its search.
    let first = search_as(
        &stack,
        None,
        SearchRequest {
            limit: 5,
            ..query("paging")
        },
    )
    .await;
    expect_error(
        stack
            .aggregator()
            .search(SearchRequest {
                query: "other words".into(),
                cursor: first.next_cursor.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );
    expect_error(
        stack
            .aggregator()
            .search(SearchRequest {
                query: "paging".into(),
                cursor: "bm90IGEgY3Vyc29y".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );
    stack.stop().await;
}
