//! The cooperative's ops API: scoped tokens and the audit log, idempotent
//! onboarding under concurrency, plans and quotas, suspension.

use anp_proto::ops::v1::*;
use anp_proto::sites::v1::{GetSiteRequest, LeaveRequest, Role};
use tonic::Code;

use crate::harness::{Stack, authorized, count, expect_error, with_token};
use crate::people::{create_site, invite, join, publish_as, scope};

fn onboard_request(slug: &str, key: &str) -> OnboardNetworkRequest {
    OnboardNetworkRequest {
        slug: slug.into(),
        name: format!("Network {slug}"),
        idempotency_key: key.into(),
        admin_email: format!("admin@{slug}.example.org"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onboarding_is_idempotent_under_concurrent_retries() {
    let stack = Stack::start().await;
    let calls = (0..12).map(|_| {
        let mut ops = stack.ops();
        async move {
            ops.onboard_network(authorized(onboard_request("solidarity", "retry-key")))
                .await
        }
    });
    let results: Vec<OnboardNetworkResponse> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|result| result.expect("every retry succeeds").into_inner())
        .collect();
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let first = &results[0];
    for result in &results {
        assert_eq!(result.network, first.network);
        assert_eq!(
            result.admin_invitation.as_ref().unwrap().token,
            first.admin_invitation.as_ref().unwrap().token,
            "a retry gives back the same invitation"
        );
    }
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM sites.events WHERE event_type = 'NetworkOnboarded'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM sites.events WHERE event_type = 'InvitationCreated'"
        )
        .await,
        1
    );
    // Another key for the same slug is a different onboarding: refused.
    expect_error(
        stack
            .ops()
            .onboard_network(authorized(onboard_request("solidarity", "other-key")))
            .await,
        Code::AlreadyExists,
        "slug",
    );
    // The invitation makes the first admin.
    stack.adopt("solidarity", first).await;
    let details = stack
        .ops()
        .get_network(authorized(GetNetworkRequest {
            slug: "solidarity".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(details.usage.unwrap().members, 1);
    assert_eq!(details.plan, "small");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_have_scopes_and_every_call_is_audited() {
    let stack = Stack::start().await;
    let mut ops = stack.ops();
    stack.onboard("audited", "Audited").await;
    let reader = ops
        .create_token(authorized(CreateTokenRequest {
            name: "billing".into(),
            scopes: vec!["networks:read".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(reader.token.starts_with("anp_ops_"));
    let listed = ops
        .list_networks(with_token(ListNetworksRequest {}, &reader.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.networks.len(), 1);
    expect_error(
        ops.suspend_network(with_token(
            SuspendNetworkRequest {
                slug: "audited".into(),
                notice: String::new(),
            },
            &reader.token,
        ))
        .await,
        Code::PermissionDenied,
        "networks:suspend",
    );
    expect_error(
        ops.create_token(authorized(CreateTokenRequest {
            name: "bad".into(),
            scopes: vec!["root".into()],
        }))
        .await,
        Code::InvalidArgument,
        "scopes",
    );
    expect_error(
        ops.create_token(authorized(CreateTokenRequest {
            name: "billing".into(),
            scopes: vec!["audit:read".into()],
        }))
        .await,
        Code::AlreadyExists,
        "name",
    );
    // A session token is no ops token, and an ops token no session.
    let admin = stack.admin("audited");
    expect_error(
        ops.list_networks(with_token(ListNetworksRequest {}, &admin))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    expect_error(
        create_site(&stack, &reader.token, "audited", "x", "").await,
        Code::Unauthenticated,
        "authorization",
    );
    let info = reader.info.unwrap();
    ops.revoke_token(authorized(RevokeTokenRequest {
        id: info.id.clone(),
    }))
    .await
    .unwrap();
    expect_error(
        ops.list_networks(with_token(ListNetworksRequest {}, &reader.token))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    let tokens = ops
        .list_tokens(authorized(ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(
        tokens
            .iter()
            .any(|t| t.id == info.id && t.revoked_at.is_some())
    );

    let entries = ops
        .list_audit(authorized(ListAuditRequest {
            network_slug: String::new(),
            before_id: 0,
            limit: 100,
        }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| (e.token_name.clone(), e.action.clone(), e.outcome.clone()))
        .collect();
    for expected in [
        ("bootstrap", "OnboardNetwork", "ok"),
        ("billing", "ListNetworks", "ok"),
        ("billing", "SuspendNetwork", "PermissionDenied"),
        ("bootstrap", "CreateToken", "InvalidArgument"),
        ("unauthenticated", "ListNetworks", "Unauthenticated"),
        ("bootstrap", "RevokeToken", "ok"),
    ] {
        assert!(
            seen.iter()
                .any(|(t, a, o)| (t.as_str(), a.as_str(), o.as_str()) == expected),
            "{expected:?} in {seen:?}"
        );
    }
    assert!(
        entries.windows(2).all(|pair| pair[0].id > pair[1].id),
        "newest first"
    );
    let only = ops
        .list_audit(authorized(ListAuditRequest {
            network_slug: "audited".into(),
            before_id: 0,
            limit: 100,
        }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(!only.is_empty() && only.iter().all(|e| e.network_slug == "audited"));
    let page = ops
        .list_audit(authorized(ListAuditRequest {
            network_slug: String::new(),
            before_id: entries[1].id,
            limit: 1,
        }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(page.len(), 1);
    assert!(page[0].id < entries[1].id);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_are_enforced_at_the_boundary() {
    let stack = Stack::start().await;
    let mut request = onboard_request("tiny", "");
    request.quotas = Some(Quotas {
        sites: Some(2),
        members: Some(2),
        storage_bytes: None,
    });
    let onboarded = stack
        .ops()
        .onboard_network(authorized(request))
        .await
        .unwrap()
        .into_inner();
    let quotas = onboarded.details.clone().unwrap().quotas.unwrap();
    assert_eq!((quotas.sites, quotas.members), (Some(2), Some(2)));
    assert_eq!(
        quotas.storage_bytes,
        Some(5 * 1024 * 1024 * 1024),
        "the plan's value"
    );
    stack.adopt("tiny", &onboarded).await;
    let admin = stack.admin("tiny");
    create_site(&stack, &admin, "tiny", "one", "")
        .await
        .unwrap();
    create_site(&stack, &admin, "tiny", "two", "")
        .await
        .unwrap();
    expect_error(
        create_site(&stack, &admin, "tiny", "three", "").await,
        Code::ResourceExhausted,
        "quota sites",
    );
    // Members: the admin is one; one more fits.
    let ana = stack.sign_up("ana@example.org").await;
    join(&stack, &ana, "tiny", "one").await.unwrap();
    join(&stack, &ana, "tiny", "two")
        .await
        .expect("an existing member joins another site for free");
    let bo = stack.sign_up("bo@example.org").await;
    expect_error(
        join(&stack, &bo, "tiny", "one").await,
        Code::ResourceExhausted,
        "quota members",
    );
    assert_eq!(count(&stack, "SELECT count(*) FROM sites.sites").await, 2);

    // Raising the quota lets the same writes through.
    let changed = stack
        .ops()
        .change_plan(authorized(ChangePlanRequest {
            slug: "tiny".into(),
            plan: String::new(),
            quotas: Some(Quotas {
                sites: Some(3),
                members: Some(10),
                storage_bytes: None,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        changed.usage.unwrap(),
        Usage {
            sites: 2,
            members: 2,
            storage_bytes: 0
        }
    );
    create_site(&stack, &admin, "tiny", "three", "")
        .await
        .unwrap();
    join(&stack, &bo, "tiny", "one").await.unwrap();
    // A new plan brings its own quotas.
    let standard = stack
        .ops()
        .change_plan(authorized(ChangePlanRequest {
            slug: "tiny".into(),
            plan: "standard".into(),
            quotas: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (standard.plan.as_str(), standard.quotas.unwrap().sites),
        ("standard", Some(50))
    );

    // Bad input on plan calls changes nothing.
    let events = count(&stack, "SELECT count(*) FROM sites.events").await;
    let mut ops = stack.ops();
    for (plan, quotas, field) in [
        ("gold", None, "plan"),
        (
            "",
            Some(Quotas {
                sites: Some(-1),
                ..Default::default()
            }),
            "quotas.sites",
        ),
        (
            "",
            Some(Quotas {
                members: Some(i64::MAX),
                ..Default::default()
            }),
            "quotas.members",
        ),
        (
            "",
            Some(Quotas {
                storage_bytes: Some(-5),
                ..Default::default()
            }),
            "quotas.storage_bytes",
        ),
    ] {
        expect_error(
            ops.change_plan(authorized(ChangePlanRequest {
                slug: "tiny".into(),
                plan: plan.into(),
                quotas,
            }))
            .await,
            Code::InvalidArgument,
            field,
        );
    }
    expect_error(
        ops.change_plan(authorized(ChangePlanRequest {
            slug: "nowhere".into(),
            plan: "small".into(),
            quotas: None,
        }))
        .await,
        Code::NotFound,
        "network_slug",
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.events").await,
        events
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_network_reads_but_does_not_write() {
    let stack = Stack::start().await;
    stack.onboard("paused", "Paused").await;
    let admin = stack.admin("paused");
    create_site(&stack, &admin, "paused", "main", "")
        .await
        .unwrap();
    let post = publish_as(&stack, &admin, "paused", "main", "Before the pause")
        .await
        .unwrap();
    let ana = stack.sign_up("ana@example.org").await;
    join(&stack, &ana, "paused", "main").await.unwrap();

    let suspended = stack
        .ops()
        .suspend_network(authorized(SuspendNetworkRequest {
            slug: "paused".into(),
            notice: "Paused while the invoice is settled.".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(suspended.suspended_at.is_some());
    let events = count(&stack, "SELECT count(*) FROM sites.events").await;
    expect_error(
        create_site(&stack, &admin, "paused", "other", "").await,
        Code::FailedPrecondition,
        "suspended",
    );
    expect_error(
        publish_as(&stack, &admin, "paused", "main", "During").await,
        Code::FailedPrecondition,
        "suspended",
    );
    expect_error(
        invite(&stack, &admin, "paused", "", Role::Member, "").await,
        Code::FailedPrecondition,
        "suspended",
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.events").await,
        events
    );
    // Reads go on, with the notice; a member may still leave.
    let site = stack
        .sites()
        .get_site(GetSiteRequest {
            site_id: String::new(),
            network_slug: "paused".into(),
            site_slug: "main".into(),
        })
        .await
        .unwrap();
    assert_eq!(site.into_inner().slug, "main");
    let page = reqwest::get(stack.http("/n/paused/main")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Paused while the invoice is settled."),
        "the notice is shown"
    );
    let post_page = reqwest::get(stack.http(&format!("/n/paused/main/posts/{post}")))
        .await
        .unwrap();
    assert_eq!(post_page.status(), 200);
    stack
        .sites()
        .leave(with_token(
            LeaveRequest {
                scope: scope("paused", "main"),
            },
            &ana,
        ))
        .await
        .unwrap();

    stack
        .ops()
        .resume_network(authorized(ResumeNetworkRequest {
            slug: "paused".into(),
        }))
        .await
        .unwrap();
    publish_as(&stack, &admin, "paused", "main", "After the pause")
        .await
        .unwrap();
    let html = reqwest::get(stack.http("/n/paused/main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Paused while the invoice is settled."));

    // Bad input on the ops calls.
    let mut ops = stack.ops();
    expect_error(
        ops.suspend_network(authorized(SuspendNetworkRequest {
            slug: "nowhere".into(),
            notice: String::new(),
        }))
        .await,
        Code::NotFound,
        "network_slug",
    );
    expect_error(
        ops.suspend_network(authorized(SuspendNetworkRequest {
            slug: "paused".into(),
            notice: "n".repeat(501),
        }))
        .await,
        Code::InvalidArgument,
        "notice",
    );
    expect_error(
        ops.resume_network(authorized(ResumeNetworkRequest {
            slug: "Bad Slug".into(),
        }))
        .await,
        Code::InvalidArgument,
        "network_slug",
    );
    expect_error(
        ops.get_network(authorized(GetNetworkRequest {
            slug: "nowhere".into(),
        }))
        .await,
        Code::NotFound,
        "network_slug",
    );
    expect_error(
        ops.invite_admin(authorized(InviteAdminRequest {
            slug: "paused".into(),
            email: "nope".into(),
            ttl_hours: 0,
        }))
        .await,
        Code::InvalidArgument,
        "email",
    );
    expect_error(
        ops.invite_admin(authorized(InviteAdminRequest {
            slug: "paused".into(),
            email: "b@example.org".into(),
            ttl_hours: 10_000,
        }))
        .await,
        Code::InvalidArgument,
        "ttl_hours",
    );
    let mut bad = onboard_request("fine", "");
    bad.admin_email = "no email".into();
    expect_error(
        ops.onboard_network(authorized(bad)).await,
        Code::InvalidArgument,
        "admin_email",
    );
    let mut bad = onboard_request("fine", "");
    bad.quotas = Some(Quotas {
        sites: Some(-3),
        ..Default::default()
    });
    expect_error(
        ops.onboard_network(authorized(bad)).await,
        Code::InvalidArgument,
        "quotas.sites",
    );
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM sites.networks WHERE slug = 'fine'"
        )
        .await,
        0
    );
    stack.stop().await;
}
