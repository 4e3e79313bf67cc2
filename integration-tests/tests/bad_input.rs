//! Bad input gets a clear error naming the field, and changes nothing.

use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest, SearchRequest};
use anp_proto::content::v1::{EditPostRequest, GetPostRequest, PublishPostRequest};
use anp_proto::ops::v1::{ListNetworksRequest, OnboardNetworkRequest};
use anp_proto::sites::v1::{CreateSiteRequest, GetSiteRequest};
use tonic::Code;

use crate::flow::{create_site, onboard, publish};
use crate::harness::{OPS_TOKEN, Stack, authorized, count, expect_error, with_token};

fn onboard_request(slug: &str, name: &str) -> OnboardNetworkRequest {
    OnboardNetworkRequest {
        slug: slug.into(),
        name: name.into(),
        idempotency_key: String::new(),
        admin_email: "admin@example.org".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_and_changes_nothing() {
    let stack = Stack::start().await;
    onboard(&stack, "climate", "Climate").await;
    create_site(&stack, "climate", "boston", "Boston").await;
    let post_id = publish(&stack, "climate", "boston", "First", "Body", "en").await;
    let admin = stack.admin("climate");
    let sites_events = count(&stack, "SELECT count(*) FROM sites.events").await;
    let content_events = count(&stack, "SELECT count(*) FROM content.events").await;

    // Ops token: missing or wrong.
    let mut ops = stack.ops();
    expect_error(
        ops.onboard_network(tonic::Request::new(onboard_request("ok-slug", "Name")))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    let mut wrong = tonic::Request::new(onboard_request("ok-slug", "Name"));
    wrong.metadata_mut().insert(
        "authorization",
        format!("Bearer {OPS_TOKEN}x").parse().unwrap(),
    );
    expect_error(
        ops.onboard_network(wrong).await,
        Code::Unauthenticated,
        "authorization",
    );
    expect_error(
        ops.list_networks(tonic::Request::new(ListNetworksRequest {}))
            .await,
        Code::Unauthenticated,
        "authorization",
    );

    // Slugs and names.
    for slug in [
        "",
        "A",
        "Bad Slug",
        "-x",
        "x-",
        "a--b",
        "ünï",
        &"a".repeat(49),
    ] {
        expect_error(
            ops.onboard_network(authorized(onboard_request(slug, "Name")))
                .await,
            Code::InvalidArgument,
            "slug",
        );
    }
    expect_error(
        ops.onboard_network(authorized(onboard_request("fine", "  ")))
            .await,
        Code::InvalidArgument,
        "name",
    );
    expect_error(
        ops.onboard_network(authorized(onboard_request(
            "fine",
            &"n".repeat(10 * 1024 * 1024),
        )))
        .await,
        Code::InvalidArgument,
        "name",
    );
    expect_error(
        ops.onboard_network(authorized(onboard_request("climate", "Other")))
            .await,
        Code::AlreadyExists,
        "slug",
    );

    // Sites.
    let mut sites = stack.sites();
    expect_error(
        sites
            .create_site(with_token(
                CreateSiteRequest {
                    network_slug: "nowhere".into(),
                    slug: "boston".into(),
                    name: "Boston".into(),
                    ..Default::default()
                },
                &admin,
            ))
            .await,
        Code::NotFound,
        "network_slug",
    );
    expect_error(
        sites
            .create_site(with_token(
                CreateSiteRequest {
                    network_slug: "climate".into(),
                    slug: "boston".into(),
                    name: "Boston again".into(),
                    ..Default::default()
                },
                &admin,
            ))
            .await,
        Code::AlreadyExists,
        "slug",
    );
    expect_error(
        sites
            .create_site(tonic::Request::new(CreateSiteRequest {
                network_slug: "climate".into(),
                slug: "denver".into(),
                name: "Denver".into(),
                ..Default::default()
            }))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    expect_error(
        sites
            .get_site(GetSiteRequest {
                site_id: "not-a-uuid".into(),
                network_slug: String::new(),
                site_slug: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "site_id",
    );

    // Posts.
    let mut content = stack.content();
    let post = |title: &str, body: &str, lang: &str, site: &str| PublishPostRequest {
        network_slug: "climate".into(),
        site_slug: site.into(),
        title: title.into(),
        body_markdown: body.into(),
        lang: lang.into(),
        ..Default::default()
    };
    let ten_megabytes = "t".repeat(10 * 1024 * 1024);
    for (request, code, field) in [
        (
            post("", "body", "en", "boston"),
            Code::InvalidArgument,
            "title",
        ),
        (
            post(&ten_megabytes, "body", "en", "boston"),
            Code::InvalidArgument,
            "title",
        ),
        (
            post("Title", &ten_megabytes, "en", "boston"),
            Code::InvalidArgument,
            "body_markdown",
        ),
        (
            post("Title", "body", "xx", "boston"),
            Code::InvalidArgument,
            "lang",
        ),
        (
            post("Title", "body", "en", "Nope!"),
            Code::InvalidArgument,
            "site_slug",
        ),
        (
            post("Title", "body", "en", "nowhere"),
            Code::NotFound,
            "site",
        ),
        (
            post("Ti\u{7}tle", "body", "en", "boston"),
            Code::InvalidArgument,
            "title",
        ),
    ] {
        expect_error(
            content.publish_post(with_token(request, &admin)).await,
            code,
            field,
        );
    }
    expect_error(
        content
            .publish_post(tonic::Request::new(post("Title", "body", "en", "boston")))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    expect_error(
        content
            .edit_post(with_token(
                EditPostRequest {
                    post_id: post_id.clone(),
                    expected_version: 7,
                    title: "New".into(),
                    body_markdown: "New".into(),
                    lang: String::new(),
                    ..Default::default()
                },
                &admin,
            ))
            .await,
        Code::Aborted,
        "version",
    );
    expect_error(
        content
            .get_post(GetPostRequest {
                post_id: "garbage".into(),
            })
            .await,
        Code::InvalidArgument,
        "post_id",
    );
    expect_error(
        content
            .get_post(GetPostRequest {
                post_id: uuid::Uuid::now_v7().to_string(),
            })
            .await,
        Code::NotFound,
        "post_id",
    );

    // Read side.
    let mut aggregator = stack.aggregator();
    expect_error(
        aggregator
            .search(SearchRequest {
                query: "x".repeat(600),
                network_slug: String::new(),
                limit: 0,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "query",
    );
    expect_error(
        aggregator
            .search(SearchRequest {
                query: "ok".into(),
                network_slug: String::new(),
                limit: 5000,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "limit",
    );
    let garbage = aggregator
        .search(SearchRequest {
            query: "AND OR (( \"unclosed -- ^^ title:".into(),
            network_slug: String::new(),
            limit: 0,
            ..Default::default()
        })
        .await;
    assert!(
        garbage.is_ok(),
        "garbage queries are searched leniently: {garbage:?}"
    );
    expect_error(
        aggregator
            .get_feed(GetFeedRequest {
                scope: Some(FeedScope::default()),
                cursor: "!!not-a-cursor".into(),
                limit: 0,
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );

    // HTTP.
    let long_q = "q".repeat(600);
    for (path, status, needle) in [
        (format!("/search?q={long_q}"), 400, "q:"),
        ("/search?q=a%00b".to_owned(), 400, "q:"),
        ("/search?q=x&network=Bad!".to_owned(), 400, "network"),
        ("/search?q=((%22AND".to_owned(), 200, "Search"),
        ("/n/UPPER".to_owned(), 404, "no such page"),
        ("/n/nowhere".to_owned(), 404, "nowhere"),
        ("/n/climate/nowhere".to_owned(), 404, "nowhere"),
        (
            "/n/climate/boston/posts/nope".to_owned(),
            404,
            "no such post",
        ),
        ("/n/climate?cursor=%%%".to_owned(), 400, ""),
        ("/n/climate?cursor=abc".to_owned(), 400, "cursor"),
        ("/no/such/route".to_owned(), 404, "no such page"),
    ] {
        let response = reqwest::get(stack.http(&path)).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{path}: body names {needle:?}");
    }

    // Nothing changed.
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.events").await,
        sites_events
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM content.events").await,
        content_events
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.networks").await,
        1
    );
    stack.stop().await;
}
