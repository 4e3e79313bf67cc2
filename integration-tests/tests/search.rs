//! Search as people type it: typos on longer words forgiven, accents folded,
//! "phrases" and -exclusions kept, newest first on request, and the same as
//! JSON at /api/search.

use std::time::Duration;

use anp_proto::aggregator::v1::SearchRequest;
use tonic::Code;

use crate::flow::{create_site, get_text, onboard, publish};
use crate::harness::{Stack, eventually, expect_error};

async fn ids(stack: &Stack, query: &str, sort: &str) -> Vec<String> {
    stack
        .aggregator()
        .search(SearchRequest {
            query: query.into(),
            sort: sort.into(),
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typos_accents_phrases_exclusions_and_newest_first() {
    let stack = Stack::start().await;
    onboard(&stack, "tenants", "Tenants").await;
    create_site(&stack, "tenants", "city", "City").await;
    let union = publish(
        &stack,
        "tenants",
        "city",
        "The tenants union meets",
        "All tenants welcome.",
        "en",
    )
    .await;
    let potluck = publish(
        &stack,
        "tenants",
        "city",
        "Weekly potluck",
        "Bring a dish for the union.",
        "en",
    )
    .await;
    let marcha = publish(
        &stack,
        "tenants",
        "city",
        "Marcha por la vivienda",
        "La organización vecinal convoca una marcha.",
        "es",
    )
    .await;
    let later = publish(
        &stack,
        "tenants",
        "city",
        "Otra marcha",
        "Segunda marcha del mes.",
        "es",
    )
    .await;
    let moradia = publish(
        &stack,
        "tenants",
        "city",
        "Migração e moradia",
        "Reunião da associação de inquilinos.",
        "pt",
    )
    .await;
    eventually(Duration::from_secs(15), "every post searchable", || async {
        (ids(&stack, "marcha", "").await.len() == 2
            && ids(&stack, "potluck", "").await.len() == 1
            && ids(&stack, "moradia", "").await.len() == 1)
            .then_some(())
    })
    .await;
    // Other languages: words found as written, accents folded, no stemming.
    assert_eq!(ids(&stack, "migracao", "").await, vec![moradia.as_str()]);
    assert_eq!(
        ids(&stack, "Associação inquilinos", "").await,
        vec![moradia.as_str()]
    );

    // Typos on longer words are forgiven, exact matches first.
    assert_eq!(ids(&stack, "potluk", "").await, vec![potluck.as_str()]);
    assert_eq!(ids(&stack, "tennants", "").await, vec![union.as_str()]);
    // …not on short ones: "unio" is no "union".
    assert!(ids(&stack, "unio", "").await.is_empty());
    // Accents fold; Spanish stems.
    assert_eq!(ids(&stack, "organizacion", "").await, vec![marcha.as_str()]);
    // Exclusions and phrases.
    assert_eq!(
        ids(&stack, "union -tenants", "").await,
        vec![potluck.as_str()]
    );
    assert_eq!(
        ids(&stack, "\"tenants union\"", "").await,
        vec![union.as_str()]
    );
    assert!(ids(&stack, "\"union tenants\"", "").await.is_empty());
    // Newest first on request.
    assert_eq!(
        ids(&stack, "marcha", "date").await,
        [later.clone(), marcha.clone()]
    );
    expect_error(
        stack
            .aggregator()
            .search(SearchRequest {
                query: "marcha".into(),
                sort: "random".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "sort",
    );

    // The same as JSON.
    let (status, json) = get_text(&stack.http("/api/search?q=potluk")).await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["hits"][0]["id"], potluck.as_str());
    assert_eq!(body["hits"][0]["kind"], "post");
    assert!(
        body["hits"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&potluck)
    );
    let (status, json) = get_text(&stack.http("/api/search?q=marcha&sort=random")).await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("sort"),
        "{body}"
    );
    stack.stop().await;
}
