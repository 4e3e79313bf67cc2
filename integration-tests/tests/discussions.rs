//! Discussions: members-only and public threads of a site and of a
//! network's board, replies, authors' edits, moderation and reports.

use std::time::Duration;

use anp_proto::content::v1::*;
use anp_proto::sites::v1::Role;
use tonic::Code;

use crate::flow::{get_text, search_ids};
use crate::harness::{Stack, eventually, expect_error, with_token};
use crate::people::{accept, create_site, invite};

const WAIT: Duration = Duration::from_secs(20);

fn start(site: &str, title: &str, visibility: &str) -> StartThreadRequest {
    StartThreadRequest {
        network_slug: "forum".into(),
        site_slug: site.into(),
        title: title.into(),
        body_markdown: format!("{title}: let us talk"),
        visibility: visibility.into(),
        lang: String::new(),
    }
}

async fn get(
    stack: &Stack,
    token: Option<&str>,
    thread_id: &str,
) -> Result<ThreadWithReplies, tonic::Status> {
    let message = GetThreadRequest {
        thread_id: thread_id.into(),
        ..Default::default()
    };
    let request = match token {
        Some(token) => with_token(message, token),
        None => tonic::Request::new(message),
    };
    stack
        .content()
        .get_thread(request)
        .await
        .map(|response| response.into_inner())
}

async fn threads(stack: &Stack, token: Option<&str>, site: &str) -> Vec<String> {
    let message = ListThreadsRequest {
        network_slug: "forum".into(),
        site_slug: site.into(),
        ..Default::default()
    };
    let request = match token {
        Some(token) => with_token(message, token),
        None => tonic::Request::new(message),
    };
    stack
        .content()
        .list_threads(request)
        .await
        .unwrap()
        .into_inner()
        .threads
        .into_iter()
        .map(|thread| thread.title)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_discuss_moderators_keep_order_and_the_public_sees_only_public_threads() {
    let stack = Stack::start().await;
    stack.onboard("forum", "Forum").await;
    let admin = stack.admin("forum");
    create_site(&stack, &admin, "forum", "plaza", "")
        .await
        .unwrap();
    let member = stack.sign_up("member@forum.example.org").await;
    let invitation = invite(&stack, &admin, "forum", "plaza", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &member, &invitation.token).await.unwrap();
    let stranger = stack.sign_up("stranger@example.org").await;
    let mut content = stack.content();

    let private = content
        .start_thread(with_token(start("plaza", "Safe houses", ""), &member))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(private.visibility, "members");
    let public = content
        .start_thread(with_token(
            start("plaza", "Open assembly", "public"),
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    expect_error(
        content
            .start_thread(with_token(start("plaza", "Intruding", ""), &stranger))
            .await,
        Code::PermissionDenied,
        "members",
    );
    // Who reads what.
    for token in [None, Some(stranger.as_str())] {
        expect_error(
            get(&stack, token, &private.id).await,
            Code::NotFound,
            "thread_id",
        );
        assert!(get(&stack, token, &public.id).await.is_ok());
    }
    assert!(get(&stack, Some(&member), &private.id).await.is_ok());
    assert_eq!(threads(&stack, None, "plaza").await, vec!["Open assembly"]);
    assert_eq!(
        threads(&stack, Some(&member), "plaza").await,
        vec!["Open assembly", "Safe houses"]
    );

    // Replies: members only; authors edit their own.
    let reply = |token: &str, thread: &str, body: &str| {
        let request = with_token(
            ReplyRequest {
                thread_id: thread.into(),
                body_markdown: body.into(),
            },
            token,
        );
        let mut content = stack.content();
        async move { content.reply(request).await.map(|r| r.into_inner()) }
    };
    let first = reply(&member, &public.id, "I will bring chairs")
        .await
        .unwrap();
    let second = reply(&admin, &public.id, "Thursday, 7pm").await.unwrap();
    expect_error(
        reply(&stranger, &public.id, "Let me in").await,
        Code::PermissionDenied,
        "members",
    );
    content
        .edit_reply(with_token(
            EditReplyRequest {
                reply_id: first.id.clone(),
                body_markdown: "I will bring chairs and tea".into(),
            },
            &member,
        ))
        .await
        .unwrap();
    expect_error(
        content
            .edit_reply(with_token(
                EditReplyRequest {
                    reply_id: first.id.clone(),
                    body_markdown: "Changed by someone else".into(),
                },
                &admin,
            ))
            .await,
        Code::PermissionDenied,
        "author",
    );

    // Reports reach the moderators only.
    for (token, reply_id, reason) in [
        (&stranger, "", "Spam link"),
        (&member, second.id.as_str(), "Wrong date"),
    ] {
        content
            .report(with_token(
                ReportRequest {
                    thread_id: public.id.clone(),
                    reply_id: reply_id.into(),
                    reason: reason.into(),
                },
                token,
            ))
            .await
            .unwrap();
    }
    let place = ListThreadsRequest {
        network_slug: "forum".into(),
        site_slug: "plaza".into(),
        ..Default::default()
    };
    expect_error(
        content
            .list_reports(with_token(place.clone(), &member))
            .await,
        Code::PermissionDenied,
        "moderators",
    );
    let reports = content
        .list_reports(with_token(place.clone(), &admin))
        .await
        .unwrap()
        .into_inner()
        .reports;
    assert_eq!(reports.len(), 2);

    // Moderation: a hidden reply keeps its place without its words (but its
    // author and the moderators still see them); a locked thread takes no
    // more replies.
    content
        .moderate_reply(with_token(
            ModerateReplyRequest {
                reply_id: first.id.clone(),
                action: "hide".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let seen = get(&stack, None, &public.id).await.unwrap();
    assert!(seen.replies[0].hidden && seen.replies[0].body_html.is_empty());
    assert_eq!(seen.replies[1].body_markdown, "Thursday, 7pm");
    let own = get(&stack, Some(&member), &public.id).await.unwrap();
    assert_eq!(own.replies[0].body_markdown, "I will bring chairs and tea");
    expect_error(
        content
            .moderate_thread(with_token(
                ModerateThreadRequest {
                    thread_id: public.id.clone(),
                    action: "lock".into(),
                },
                &member,
            ))
            .await,
        Code::PermissionDenied,
        "moderating",
    );
    content
        .moderate_thread(with_token(
            ModerateThreadRequest {
                thread_id: public.id.clone(),
                action: "lock".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    expect_error(
        reply(&member, &public.id, "One more").await,
        Code::FailedPrecondition,
        "closed",
    );

    // On the web and in search: the public thread only.
    let (status, page) = get_text(&stack.http(&format!("/n/forum/threads/{}", public.id))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Thursday, 7pm") && page.contains("Hidden by the moderators."));
    assert!(!page.contains("chairs"), "a hidden reply's words");
    let (status, _) = get_text(&stack.http(&format!("/n/forum/threads/{}", private.id))).await;
    assert_eq!(status, 404);
    // The site's page lists its public discussions only.
    let (_, site_page) = get_text(&stack.http("/n/forum/plaza")).await;
    assert!(site_page.contains("Open assembly") && !site_page.contains("Safe houses"));
    eventually(WAIT, "the public thread in search", || async {
        (search_ids(&stack, "assembly", "forum").await == vec![public.id.clone()]).then_some(())
    })
    .await;
    assert!(search_ids(&stack, "safe houses", "forum").await.is_empty());
    content
        .moderate_thread(with_token(
            ModerateThreadRequest {
                thread_id: public.id.clone(),
                action: "hide".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    eventually(WAIT, "the hidden thread out of search", || async {
        search_ids(&stack, "assembly", "forum")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    expect_error(
        get(&stack, None, &public.id).await,
        Code::NotFound,
        "thread_id",
    );

    // The network's board: for the network's members.
    let board = content
        .start_thread(with_token(start("", "Network strategy", ""), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(board.site_slug.is_empty());
    expect_error(
        content
            .start_thread(with_token(start("", "Me too", ""), &stranger))
            .await,
        Code::PermissionDenied,
        "members",
    );
    assert_eq!(
        threads(&stack, Some(&member), "").await,
        vec!["Network strategy"]
    );
    assert!(threads(&stack, None, "").await.is_empty());

    // Bad input names the field and writes nothing.
    let events = crate::harness::count(&stack, "SELECT count(*) FROM content.events").await;
    let mut empty = start("plaza", "Empty", "");
    empty.body_markdown = " ".into();
    for (request, field) in [
        (empty, "body_markdown"),
        (start("plaza", "Secret", "secret"), "visibility"),
        (start("plaza", &"t".repeat(201), ""), "title"),
        (start("Bad Slug", "x", ""), "site_slug"),
    ] {
        expect_error(
            content.start_thread(with_token(request, &member)).await,
            Code::InvalidArgument,
            field,
        );
    }
    expect_error(
        content
            .moderate_thread(with_token(
                ModerateThreadRequest {
                    thread_id: board.id.clone(),
                    action: "explode".into(),
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
        "action",
    );
    expect_error(
        content
            .report(with_token(
                ReportRequest {
                    thread_id: board.id.clone(),
                    reply_id: String::new(),
                    reason: String::new(),
                },
                &member,
            ))
            .await,
        Code::InvalidArgument,
        "reason",
    );
    expect_error(
        content
            .list_threads(ListThreadsRequest {
                network_slug: "forum".into(),
                limit: 1000,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "limit",
    );
    assert_eq!(
        crate::harness::count(&stack, "SELECT count(*) FROM content.events").await,
        events
    );
    stack.stop().await;
}
