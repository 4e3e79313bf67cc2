//! Posts through their life: drafts, scheduled publishing, tags,
//! visibility, edits, retraction and history — each seen only by whom it is
//! for, in the content service, the feeds, search and pages.

use std::time::Duration;

use anp_proto::content::v1::*;
use anp_proto::sites::v1::Role;
use tonic::Code;

use crate::flow::{feed_ids, get_text, search_ids};
use crate::harness::{Stack, count, eventually, expect_error, with_token};
use crate::people::{accept, create_site, invite};

const WAIT: Duration = Duration::from_secs(20);

fn request(title: &str, body: &str) -> PublishPostRequest {
    PublishPostRequest {
        network_slug: "press".into(),
        site_slug: "desk".into(),
        title: title.into(),
        body_markdown: body.into(),
        lang: "en".into(),
        ..Default::default()
    }
}

async fn publish(stack: &Stack, token: &str, request: PublishPostRequest) -> Post {
    stack
        .content()
        .publish_post(with_token(request, token))
        .await
        .expect("publish")
        .into_inner()
}

/// A post as a reader sees it (anonymous without a token).
async fn read(stack: &Stack, token: Option<&str>, post_id: &str) -> Result<Post, tonic::Status> {
    let message = GetPostRequest {
        post_id: post_id.into(),
    };
    let request = match token {
        Some(token) => with_token(message, token),
        None => tonic::Request::new(message),
    };
    stack
        .content()
        .get_post(request)
        .await
        .map(|response| response.into_inner())
}

async fn list(
    stack: &Stack,
    token: Option<&str>,
    status: &str,
    limit: u32,
    cursor: &str,
) -> Result<ListPostsResponse, tonic::Status> {
    let message = ListPostsRequest {
        network_slug: "press".into(),
        site_slug: "desk".into(),
        status: status.into(),
        limit,
        cursor: cursor.into(),
    };
    let request = match token {
        Some(token) => with_token(message, token),
        None => tonic::Request::new(message),
    };
    stack
        .content()
        .list_posts(request)
        .await
        .map(|response| response.into_inner())
}

/// Publishes a public marker post and waits until it is in the network's
/// feed: everything written before it has been projected by then.
async fn settle(stack: &Stack, token: &str, marker: &str) {
    let post = publish(stack, token, request(marker, "A marker")).await;
    eventually(WAIT, "the marker in the feed", || async {
        feed_ids(stack, "press", "")
            .await
            .contains(&post.id)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posts_live_as_drafts_scheduled_published_and_retracted_seen_only_by_whom_they_are_for() {
    let stack = Stack::start().await;
    stack.onboard("press", "Press").await;
    let admin = stack.admin("press");
    create_site(&stack, &admin, "press", "desk", "")
        .await
        .unwrap();
    create_site(&stack, &admin, "press", "other", "")
        .await
        .unwrap();
    // A member of the site, a member of another site of the network, and
    // somebody of no network.
    let member = stack.sign_up("member@example.org").await;
    let neighbour = stack.sign_up("neighbour@example.org").await;
    let outsider = stack.sign_up("outsider@example.org").await;
    for (token, site) in [(&member, "desk"), (&neighbour, "other")] {
        let invitation = invite(&stack, &admin, "press", site, Role::Member, "")
            .await
            .unwrap();
        accept(&stack, token, &invitation.token).await.unwrap();
    }

    // A draft: its editors only.
    let draft = publish(
        &stack,
        &admin,
        PublishPostRequest {
            tags: vec!["Climate".into(), "migración".into(), "climate".into()],
            draft: true,
            ..request("Draft about water", "Rivers and wells")
        },
    )
    .await;
    assert_eq!(draft.status, "draft");
    assert_eq!(draft.tags, vec!["climate", "migración"]);
    for token in [None, Some(member.as_str()), Some(outsider.as_str())] {
        expect_error(
            read(&stack, token, &draft.id).await,
            Code::NotFound,
            "post_id",
        );
    }
    assert_eq!(
        read(&stack, Some(&admin), &draft.id).await.unwrap().status,
        "draft"
    );
    expect_error(
        list(&stack, Some(&member), "draft", 0, "").await,
        Code::PermissionDenied,
        "editors",
    );
    let drafts = list(&stack, Some(&admin), "draft", 0, "").await.unwrap();
    assert_eq!(drafts.posts.len(), 1);

    // Members-only posts.
    let for_network = publish(
        &stack,
        &admin,
        PublishPostRequest {
            visibility: "network".into(),
            ..request("Network meeting about water", "For the network")
        },
    )
    .await;
    let for_site = publish(
        &stack,
        &admin,
        PublishPostRequest {
            visibility: "site".into(),
            ..request("Desk meeting about water", "For the desk")
        },
    )
    .await;
    settle(&stack, &admin, "Marker one").await;
    let visible = feed_ids(&stack, "press", "").await;
    let found = search_ids(&stack, "water", "press").await;
    for hidden in [&draft.id, &for_network.id, &for_site.id] {
        assert!(!visible.contains(hidden), "not in public feeds");
        assert!(!found.contains(hidden), "not in public search");
    }
    // (reader, network post, site post)
    for (who, token, network, site) in [
        ("anonymous", None, false, false),
        ("outsider", Some(outsider.as_str()), false, false),
        ("neighbour", Some(neighbour.as_str()), true, false),
        ("member", Some(member.as_str()), true, true),
    ] {
        let network_read = read(&stack, token, &for_network.id).await;
        assert_eq!(network_read.is_ok(), network, "{who}, network post");
        let site_read = read(&stack, token, &for_site.id).await;
        assert_eq!(site_read.is_ok(), site, "{who}, site post");
    }
    // Lists hold what the reader may read, page by page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(&stack, Some(&member), "published", 1, &cursor)
            .await
            .unwrap();
        assert!(page.posts.len() <= 1);
        seen.extend(page.posts.iter().map(|post| post.id.clone()));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(
        seen.len(),
        3,
        "two members-only posts and the marker: {seen:?}"
    );
    assert!(seen.contains(&for_site.id) && seen.contains(&for_network.id));
    let public = list(&stack, None, "published", 0, "").await.unwrap();
    assert_eq!(public.posts.len(), 1, "the marker only");

    // The draft goes out: feeds, search, the page with its tags.
    let out = stack
        .content()
        .publish_draft(with_token(
            PublishDraftRequest {
                post_id: draft.id.clone(),
                expected_version: 1,
                publish_at: None,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((out.status.as_str(), out.version), ("published", 2));
    eventually(WAIT, "the published draft in feeds and search", || async {
        let listed = feed_ids(&stack, "press", "desk").await.contains(&draft.id);
        let found = search_ids(&stack, "rivers", "press").await == vec![draft.id.clone()];
        (listed && found).then_some(())
    })
    .await;
    let (status, page) = get_text(&stack.http(&format!("/n/press/desk/posts/{}", draft.id))).await;
    assert_eq!(status, 200);
    assert!(page.contains("#migración"), "tags on the page");

    // Scheduled: out at its time, by itself.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let scheduled = publish(
        &stack,
        &admin,
        PublishPostRequest {
            publish_at: Some(anp_kit::timestamp(at)),
            ..request("Scheduled water report", "Comes out later")
        },
    )
    .await;
    assert_eq!(scheduled.status, "scheduled");
    assert!(!feed_ids(&stack, "press", "").await.contains(&scheduled.id));
    expect_error(
        read(&stack, None, &scheduled.id).await,
        Code::NotFound,
        "post_id",
    );
    eventually(WAIT, "the scheduled post out at its time", || async {
        let post = read(&stack, None, &scheduled.id).await.ok()?;
        let listed = feed_ids(&stack, "press", "").await.contains(&scheduled.id);
        (post.status == "published" && listed).then_some(post)
    })
    .await;
    let published = read(&stack, None, &scheduled.id).await.unwrap();
    assert_eq!(
        anp_kit::from_timestamp(published.published_at.as_ref()).timestamp(),
        at.timestamp(),
        "published at the time it was scheduled for"
    );

    // A public post made members-only leaves public feeds and search.
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: draft.id.clone(),
                title: "Rivers, for members".into(),
                body_markdown: "Rivers and wells".into(),
                visibility: "network".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    eventually(WAIT, "the post out of public feeds and search", || async {
        let listed = feed_ids(&stack, "press", "").await.contains(&draft.id);
        let found = search_ids(&stack, "rivers", "press")
            .await
            .contains(&draft.id);
        (!listed && !found).then_some(())
    })
    .await;

    // Retracted: gone everywhere; its page says so; its words only for editors.
    let retracted = stack
        .content()
        .retract_post(with_token(
            RetractPostRequest {
                post_id: scheduled.id.clone(),
                reason: "Wrong figures".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retracted.status, "retracted");
    eventually(
        WAIT,
        "the retracted post out of feeds and search",
        || async {
            let listed = feed_ids(&stack, "press", "").await.contains(&scheduled.id);
            let found = search_ids(&stack, "report", "press")
                .await
                .contains(&scheduled.id);
            (!listed && !found).then_some(())
        },
    )
    .await;
    // Its words are not kept in the timelines' tables either.
    assert_eq!(
        count(
            &stack,
            &format!(
                "SELECT count(*) FROM aggregator.feed_posts WHERE post_id = '{}'",
                scheduled.id
            )
        )
        .await,
        0
    );
    let (status, page) =
        get_text(&stack.http(&format!("/n/press/desk/posts/{}", scheduled.id))).await;
    assert_eq!(status, 410);
    assert!(page.contains("Wrong figures"), "{page}");
    let seen_by_anyone = read(&stack, None, &scheduled.id).await.unwrap();
    assert_eq!(seen_by_anyone.status, "retracted");
    assert!(seen_by_anyone.title.is_empty() && seen_by_anyone.body_html.is_empty());
    assert_eq!(
        read(&stack, Some(&admin), &scheduled.id)
            .await
            .unwrap()
            .title,
        "Scheduled water report"
    );
    expect_error(
        stack
            .content()
            .edit_post(with_token(
                EditPostRequest {
                    post_id: scheduled.id.clone(),
                    title: "Again".into(),
                    body_markdown: "x".into(),
                    ..Default::default()
                },
                &admin,
            ))
            .await,
        Code::FailedPrecondition,
        "retracted",
    );

    // History, newest first, for editors.
    let history = stack
        .content()
        .get_post_history(with_token(
            GetPostHistoryRequest {
                post_id: scheduled.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = history
        .versions
        .iter()
        .map(|version| version.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        vec!["PostRetracted", "PostPublished", "PostScheduled"]
    );
    assert_eq!(history.versions[1].actor, "scheduler");
    expect_error(
        stack
            .content()
            .get_post_history(with_token(
                GetPostHistoryRequest {
                    post_id: scheduled.id.clone(),
                },
                &member,
            ))
            .await,
        Code::NotFound,
        "post_id",
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_post_input_is_refused_naming_the_field() {
    let stack = Stack::start().await;
    stack.onboard("press", "Press").await;
    let admin = stack.admin("press");
    create_site(&stack, &admin, "press", "desk", "")
        .await
        .unwrap();
    let far = chrono::Utc::now() + chrono::Duration::days(400);
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let cases: Vec<(PublishPostRequest, &str)> = vec![
        (
            PublishPostRequest {
                tags: vec!["<script>".into()],
                ..request("T", "B")
            },
            "tags",
        ),
        (
            PublishPostRequest {
                tags: (0..11).map(|n| format!("t{n}")).collect(),
                ..request("T", "B")
            },
            "tags",
        ),
        (
            PublishPostRequest {
                visibility: "secret".into(),
                ..request("T", "B")
            },
            "visibility",
        ),
        (
            PublishPostRequest {
                publish_at: Some(anp_kit::timestamp(far)),
                ..request("T", "B")
            },
            "publish_at",
        ),
        (
            PublishPostRequest {
                publish_at: Some(anp_kit::timestamp(soon)),
                draft: true,
                ..request("T", "B")
            },
            "publish_at",
        ),
    ];
    for (bad, field) in cases {
        expect_error(
            stack.content().publish_post(with_token(bad, &admin)).await,
            Code::InvalidArgument,
            field,
        );
    }
    for (status, limit, cursor, field) in [
        ("bogus", 0, "", "status"),
        ("published", 1000, "", "limit"),
        ("published", 0, "!!", "cursor"),
    ] {
        expect_error(
            list(&stack, Some(&admin), status, limit, cursor).await,
            Code::InvalidArgument,
            field,
        );
    }
    let post = publish(&stack, &admin, request("Fine", "Fine")).await;
    expect_error(
        stack
            .content()
            .retract_post(with_token(
                RetractPostRequest {
                    post_id: post.id.clone(),
                    reason: "r".repeat(501),
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
        "reason",
    );
    expect_error(
        stack
            .content()
            .publish_draft(with_token(
                PublishDraftRequest {
                    post_id: post.id.clone(),
                    ..Default::default()
                },
                &admin,
            ))
            .await,
        Code::FailedPrecondition,
        "not a draft",
    );
    // Nothing of that was written.
    assert_eq!(
        crate::harness::count(&stack, "SELECT count(*) FROM content.events").await,
        1
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_posts_wait_while_their_network_is_suspended() {
    use anp_proto::ops::v1::{ResumeNetworkRequest, SuspendNetworkRequest};

    let stack = Stack::start().await;
    stack.onboard("press", "Press").await;
    let admin = stack.admin("press");
    create_site(&stack, &admin, "press", "desk", "")
        .await
        .unwrap();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let post = publish(
        &stack,
        &admin,
        PublishPostRequest {
            publish_at: Some(anp_kit::timestamp(at)),
            ..request("Later", "Held back")
        },
    )
    .await;
    stack
        .ops()
        .suspend_network(crate::harness::authorized(SuspendNetworkRequest {
            slug: "press".into(),
            notice: String::new(),
        }))
        .await
        .unwrap();
    eventually(WAIT, "the post's time has come", || async {
        (chrono::Utc::now() > at).then_some(())
    })
    .await;
    // A pass of the scheduler now publishes nothing: the network is suspended.
    let store = anp_eventstore::EventStore::connect(&stack.infra.database_url, "content")
        .await
        .unwrap();
    let sites = anp_proto::sites::v1::sites_service_client::SitesServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", stack.sites_addr))
            .unwrap()
            .connect_lazy(),
    );
    let content = anp_content::Content::new(store, sites);
    assert_eq!(content.publish_due().await.unwrap(), 0);
    let held = read(&stack, Some(&admin), &post.id).await.unwrap();
    assert_eq!(held.status, "scheduled");
    stack
        .ops()
        .resume_network(crate::harness::authorized(ResumeNetworkRequest {
            slug: "press".into(),
        }))
        .await
        .unwrap();
    eventually(WAIT, "the post out once the network is back", || async {
        let post = read(&stack, None, &post.id).await.ok()?;
        (post.status == "published").then_some(())
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_site_has_pages_in_a_menu_its_editors_keep() {
    let stack = Stack::start().await;
    stack.onboard("press", "Press").await;
    let admin = stack.admin("press");
    create_site(&stack, &admin, "press", "desk", "")
        .await
        .unwrap();
    let member = stack.sign_up("reader@example.org").await;
    let invitation = invite(&stack, &admin, "press", "desk", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &member, &invitation.token).await.unwrap();
    let create = |token: String, slug: &str, title: &str, body: &str| {
        let mut content = stack.content();
        let request = CreatePageRequest {
            network_slug: "press".into(),
            site_slug: "desk".into(),
            slug: slug.into(),
            title: title.into(),
            body_markdown: body.into(),
            lang: String::new(),
        };
        async move {
            content
                .create_page(with_token(request, &token))
                .await
                .map(|response| response.into_inner())
        }
    };
    let about = create(
        admin.clone(),
        "about",
        "About us",
        "We are a *cooperative* newsroom",
    )
    .await
    .unwrap();
    let contact = create(admin.clone(), "contact", "Contact", "Write to the desk")
        .await
        .unwrap();
    let join = create(admin.clone(), "join", "Join", "Come to a meeting")
        .await
        .unwrap();
    assert_eq!((about.position, contact.position, join.position), (1, 2, 3));
    expect_error(
        create(admin.clone(), "about", "Again", "x").await,
        Code::AlreadyExists,
        "slug",
    );
    expect_error(
        create(member.clone(), "mine", "Mine", "x").await,
        Code::PermissionDenied,
        "editor",
    );
    expect_error(
        create(admin.clone(), "Bad Slug", "x", "x").await,
        Code::InvalidArgument,
        "slug",
    );
    let menu = |stack: &Stack| {
        let mut content = stack.content();
        async move {
            content
                .list_pages(ListPagesRequest {
                    network_slug: "press".into(),
                    site_slug: "desk".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .pages
                .into_iter()
                .map(|page| page.slug)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(menu(&stack).await, vec!["about", "contact", "join"]);
    let reorder = |ids: Vec<String>| {
        let mut content = stack.content();
        let token = admin.clone();
        async move {
            content
                .reorder_pages(with_token(
                    ReorderPagesRequest {
                        network_slug: "press".into(),
                        site_slug: "desk".into(),
                        page_ids: ids,
                    },
                    &token,
                ))
                .await
        }
    };
    expect_error(
        reorder(vec![join.id.clone(), about.id.clone()]).await,
        Code::InvalidArgument,
        "page_ids",
    );
    expect_error(
        reorder(vec![join.id.clone(), join.id.clone(), about.id.clone()]).await,
        Code::InvalidArgument,
        "page_ids",
    );
    reorder(vec![join.id.clone(), about.id.clone(), contact.id.clone()])
        .await
        .unwrap();
    assert_eq!(menu(&stack).await, vec!["join", "about", "contact"]);

    // On the web: the menu on the site's page, each page at its slug, and
    // found by search (the link by id leads to the slug).
    let (status, site_page) = get_text(&stack.http("/n/press/desk")).await;
    assert_eq!(status, 200);
    let site_page = site_page.replace("&#x2f;", "/");
    let join_at = site_page.find("/n/press/desk/pages/join").expect("menu");
    let about_at = site_page.find("/n/press/desk/pages/about").expect("menu");
    assert!(join_at < about_at, "menu order");
    let (status, about_page) = get_text(&stack.http("/n/press/desk/pages/about")).await;
    assert_eq!(status, 200);
    assert!(about_page.contains("<em>cooperative</em>"), "{about_page}");
    eventually(WAIT, "the page found by search", || async {
        (search_ids(&stack, "cooperative newsroom", "press").await == vec![about.id.clone()])
            .then_some(())
    })
    .await;
    let by_id = reqwest::get(stack.http(&format!("/n/press/desk/pages/{}", about.id)))
        .await
        .unwrap();
    assert_eq!(by_id.status(), 200);
    assert_eq!(by_id.url().path(), "/n/press/desk/pages/about");

    // Renamed, then deleted: gone from the menu, the web and search.
    stack
        .content()
        .edit_page(with_token(
            EditPageRequest {
                page_id: about.id.clone(),
                title: "About the desk".into(),
                body_markdown: "A cooperative newsroom since 2019".into(),
                slug: "who-we-are".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    assert_eq!(menu(&stack).await, vec!["join", "who-we-are", "contact"]);
    stack
        .content()
        .delete_page(with_token(
            DeletePageRequest {
                page_id: about.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    assert_eq!(menu(&stack).await, vec!["join", "contact"]);
    let (status, _) = get_text(&stack.http("/n/press/desk/pages/who-we-are")).await;
    assert_eq!(status, 404);
    eventually(WAIT, "the deleted page out of search", || async {
        search_ids(&stack, "cooperative newsroom", "press")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    // Its slug is free again.
    create(admin.clone(), "who-we-are", "Who we are", "New text")
        .await
        .unwrap();
    stack.stop().await;
}

/// The titles of a timeline (`network`, or `network` and `site`).
async fn titles(stack: &Stack, network: &str, site: &str) -> Vec<String> {
    stack
        .aggregator()
        .get_feed(anp_proto::aggregator::v1::GetFeedRequest {
            scope: Some(anp_proto::aggregator::v1::FeedScope {
                network_slug: network.into(),
                site_slug: site.into(),
                ..Default::default()
            }),
            cursor: String::new(),
            limit: 100,
        })
        .await
        .expect("feed")
        .into_inner()
        .entries
        .into_iter()
        .map(|entry| {
            format!(
                "{} ({}/{})",
                entry.title, entry.network_slug, entry.site_slug
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_shared_into_three_sites_is_edited_and_retracted_everywhere_at_once() {
    let stack = Stack::start().await;
    for network in ["alpha", "beta", "gamma"] {
        stack.onboard(network, network).await;
    }
    let (alpha, beta, gamma) = (
        stack.admin("alpha"),
        stack.admin("beta"),
        stack.admin("gamma"),
    );
    for (token, network, site) in [
        (&alpha, "alpha", "a1"),
        (&alpha, "alpha", "a2"),
        (&beta, "beta", "b1"),
        (&gamma, "gamma", "g1"),
    ] {
        create_site(&stack, token, network, site, "").await.unwrap();
    }
    let reader = stack.sign_up("reader@beta.example.org").await;
    let invitation = invite(&stack, &beta, "beta", "b1", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &reader, &invitation.token).await.unwrap();
    let post = publish(
        &stack,
        &alpha,
        PublishPostRequest {
            network_slug: "alpha".into(),
            site_slug: "a1".into(),
            ..request("Water march", "Saturday at noon")
        },
    )
    .await;
    let share = |token: &str, site: &str| {
        let (network, site) = site.split_once('/').unwrap();
        let message = SharePostRequest {
            post_id: post.id.clone(),
            network_slug: network.into(),
            site_slug: site.into(),
        };
        let request = with_token(message, token);
        let mut content = stack.content();
        async move { content.share_post(request).await.map(|r| r.into_inner()) }
    };
    let decide = |token: &str, site: &str, accept: bool| {
        let (network, site) = site.split_once('/').unwrap();
        let message = DecideShareRequest {
            post_id: post.id.clone(),
            network_slug: network.into(),
            site_slug: site.into(),
            accept,
        };
        let request = with_token(message, token);
        let mut content = stack.content();
        async move { content.decide_share(request).await.map(|r| r.into_inner()) }
    };
    // Into a site its author edits too: at once. Into another network's
    // site: offered, and that site's editors decide.
    let shared = share(&alpha, "alpha/a2").await.unwrap();
    assert_eq!(shared.shares[0].status, "accepted");
    let offered = share(&alpha, "beta/b1").await.unwrap();
    assert_eq!(offered.shares[1].status, "pending");
    expect_error(
        share(&alpha, "alpha/a1").await,
        Code::InvalidArgument,
        "own site",
    );
    expect_error(
        share(&reader, "gamma/g1").await,
        Code::PermissionDenied,
        "editor",
    );
    expect_error(
        decide(&reader, "beta/b1", true).await,
        Code::PermissionDenied,
        "editor",
    );
    let offers = stack
        .content()
        .list_share_requests(with_token(
            ListShareRequestsRequest {
                network_slug: "beta".into(),
                site_slug: "b1".into(),
            },
            &beta,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offers.posts.len(), 1);
    decide(&beta, "beta/b1", true).await.unwrap();
    expect_error(
        decide(&beta, "beta/b1", true).await,
        Code::FailedPrecondition,
        "not offered",
    );
    // Offered to gamma and declined; then gamma's editor takes it in.
    share(&alpha, "gamma/g1").await.unwrap();
    let declined = decide(&gamma, "gamma/g1", false).await.unwrap();
    assert_eq!(declined.shares.len(), 2);
    let taken = share(&gamma, "gamma/g1").await.unwrap();
    assert!(taken.shares.iter().all(|share| share.status == "accepted"));

    // One source, shown with its own site in every timeline it is in.
    let source = "Water march (alpha/a1)".to_owned();
    let everywhere = [
        ("alpha", "a1"),
        ("alpha", "a2"),
        ("beta", "b1"),
        ("gamma", "g1"),
        ("alpha", ""),
        ("beta", ""),
        ("gamma", ""),
        ("", ""),
    ];
    eventually(WAIT, "the post in every timeline", || async {
        for (network, site) in everywhere {
            if titles(&stack, network, site).await != vec![source.clone()] {
                return None;
            }
        }
        Some(())
    })
    .await;

    // Edited once: changed everywhere.
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: post.id.clone(),
                title: "Water march, new route".into(),
                body_markdown: "Saturday at noon, from the river".into(),
                ..Default::default()
            },
            &alpha,
        ))
        .await
        .unwrap();
    let edited = "Water march, new route (alpha/a1)".to_owned();
    eventually(WAIT, "the edit in every timeline", || async {
        for (network, site) in everywhere {
            if titles(&stack, network, site).await != vec![edited.clone()] {
                return None;
            }
        }
        Some(())
    })
    .await;

    // Withdrawn from one site by that site's editor: gone there only.
    stack
        .content()
        .unshare_post(with_token(
            SharePostRequest {
                post_id: post.id.clone(),
                network_slug: "gamma".into(),
                site_slug: "g1".into(),
            },
            &gamma,
        ))
        .await
        .unwrap();
    eventually(WAIT, "the post out of gamma only", || async {
        let gone = titles(&stack, "gamma", "g1").await.is_empty()
            && titles(&stack, "gamma", "").await.is_empty();
        let kept = titles(&stack, "beta", "b1").await == vec![edited.clone()];
        (gone && kept).then_some(())
    })
    .await;

    // Retracted: gone from every timeline at once.
    stack
        .content()
        .retract_post(with_token(
            RetractPostRequest {
                post_id: post.id.clone(),
                reason: String::new(),
            },
            &alpha,
        ))
        .await
        .unwrap();
    eventually(WAIT, "the post out of every timeline", || async {
        for (network, site) in everywhere {
            if !titles(&stack, network, site).await.is_empty() {
                return None;
            }
        }
        Some(())
    })
    .await;
    // A network that took the post in leaves: the share is withdrawn from
    // the post, so its timelines (and any later network of that name) never
    // show it again.
    stack
        .ops()
        .suspend_network(crate::harness::authorized(
            anp_proto::ops::v1::SuspendNetworkRequest {
                slug: "beta".into(),
                notice: String::new(),
            },
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = anp_archive::client::export(
        &mut stack.ops(),
        crate::harness::OPS_TOKEN,
        "beta",
        &dir.path().join("beta.tar"),
    )
    .await
    .unwrap();
    stack
        .ops()
        .offboard_network(crate::harness::authorized(
            anp_proto::ops::v1::OffboardNetworkRequest {
                slug: "beta".into(),
                confirm_slug: "beta".into(),
                exported: manifest.to_proto().services,
            },
        ))
        .await
        .unwrap();
    let after = read(&stack, Some(&alpha), &post.id).await.unwrap();
    let left: Vec<&str> = after
        .shares
        .iter()
        .map(|share| share.network_slug.as_str())
        .collect();
    assert_eq!(left, vec!["alpha"], "beta's share withdrawn");
    // Only public, published posts travel.
    let draft = publish(
        &stack,
        &alpha,
        PublishPostRequest {
            network_slug: "alpha".into(),
            site_slug: "a1".into(),
            draft: true,
            ..request("Draft", "Not yet")
        },
    )
    .await;
    expect_error(
        stack
            .content()
            .share_post(with_token(
                SharePostRequest {
                    post_id: draft.id,
                    network_slug: "gamma".into(),
                    site_slug: "g1".into(),
                },
                &alpha,
            ))
            .await,
        Code::FailedPrecondition,
        "public",
    );
    stack.stop().await;
}
