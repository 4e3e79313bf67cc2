//! Accounts, sessions, invitations, join requests, roles and the site tree,
//! through the sites and content services as members would use them.

use anp_proto::content::v1::PublishPostRequest;
use anp_proto::sites::v1::*;
use tonic::Code;

use crate::harness::{PASSWORD, Stack, count, expect_error, with_token};

pub fn scope(network: &str, site: &str) -> Option<Scope> {
    Some(Scope {
        network_slug: network.into(),
        site_slug: site.into(),
        site_id: String::new(),
    })
}

pub fn settings(name: &str) -> SiteSettings {
    SiteSettings {
        name: name.into(),
        languages: vec!["en".into()],
        ..Default::default()
    }
}

pub async fn create_site(
    stack: &Stack,
    token: &str,
    network: &str,
    slug: &str,
    parent: &str,
) -> Result<Site, tonic::Status> {
    stack
        .sites()
        .create_site(with_token(
            CreateSiteRequest {
                network_slug: network.into(),
                slug: slug.into(),
                name: slug.to_uppercase(),
                parent_site_slug: parent.into(),
                settings: None,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

pub async fn invite(
    stack: &Stack,
    token: &str,
    network: &str,
    site: &str,
    role: Role,
    email: &str,
) -> Result<Invitation, tonic::Status> {
    stack
        .sites()
        .invite(with_token(
            InviteRequest {
                scope: scope(network, site),
                role: role as i32,
                ttl_hours: 0,
                email: email.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

pub async fn accept(
    stack: &Stack,
    token: &str,
    invitation: &str,
) -> Result<Membership, tonic::Status> {
    stack
        .sites()
        .accept_invitation(with_token(
            AcceptInvitationRequest {
                token: invitation.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

pub async fn join(
    stack: &Stack,
    token: &str,
    network: &str,
    site: &str,
) -> Result<JoinResponse, tonic::Status> {
    stack
        .sites()
        .join(with_token(
            JoinRequest {
                scope: scope(network, site),
                message: "Let me in, please".into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

pub async fn publish_as(
    stack: &Stack,
    token: &str,
    network: &str,
    site: &str,
    title: &str,
) -> Result<String, tonic::Status> {
    stack
        .content()
        .publish_post(with_token(
            PublishPostRequest {
                network_slug: network.into(),
                site_slug: site.into(),
                title: title.into(),
                body_markdown: "Body".into(),
                lang: "en".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().id)
}

async fn whoami(stack: &Stack, token: &str) -> Result<WhoAmIResponse, tonic::Status> {
    stack
        .sites()
        .who_am_i(with_token(WhoAmIRequest {}, token))
        .await
        .map(|response| response.into_inner())
}

async fn account_id(stack: &Stack, token: &str) -> String {
    whoami(stack, token).await.unwrap().account.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_join_are_invited_and_hold_roles() {
    let stack = Stack::start().await;
    stack.onboard("movement", "The Movement").await;
    let admin = stack.admin("movement");
    create_site(&stack, &admin, "movement", "boston", "")
        .await
        .unwrap();
    create_site(&stack, &admin, "movement", "arts", "")
        .await
        .unwrap();
    let mut arts = settings("Arts");
    arts.join_policy = JoinPolicy::InviteOnly as i32;
    stack
        .sites()
        .update_site(with_token(
            UpdateSiteRequest {
                site: scope("movement", "arts"),
                settings: Some(arts),
            },
            &admin,
        ))
        .await
        .unwrap();

    // An open site: anyone signed in joins as a member; members cannot post.
    let ana = stack.sign_up("Ana@Example.org").await;
    expect_error(
        join(&stack, "not-a-token", "movement", "boston").await,
        Code::Unauthenticated,
        "authorization",
    );
    let joined = join(&stack, &ana, "movement", "boston").await.unwrap();
    assert_eq!(joined.membership.unwrap().role, Role::Member as i32);
    expect_error(
        publish_as(&stack, &ana, "movement", "boston", "Hi").await,
        Code::PermissionDenied,
        "editor",
    );

    // An invitation bound to Bo's email: Ana cannot use it, Bo can, once.
    let bo = stack.sign_up("bo@example.org").await;
    let for_bo = invite(
        &stack,
        &admin,
        "movement",
        "boston",
        Role::Editor,
        "BO@example.org",
    )
    .await
    .unwrap();
    expect_error(
        accept(&stack, &ana, &for_bo.token).await,
        Code::PermissionDenied,
        "token",
    );
    let accepted = accept(&stack, &bo, &for_bo.token).await.unwrap();
    assert_eq!(
        (accepted.role, accepted.site_slug.as_str()),
        (Role::Editor as i32, "boston")
    );
    publish_as(&stack, &bo, "movement", "boston", "Bo writes")
        .await
        .unwrap();
    expect_error(
        accept(&stack, &bo, &for_bo.token).await,
        Code::FailedPrecondition,
        "already used",
    );
    expect_error(
        accept(&stack, &bo, "garbage").await,
        Code::InvalidArgument,
        "token",
    );
    let mut forged = for_bo.token.clone();
    forged.replace_range(
        forged.len() - 2..,
        if forged.ends_with("AA") { "BB" } else { "AA" },
    );
    expect_error(
        accept(&stack, &bo, &forged).await,
        Code::InvalidArgument,
        "token",
    );

    // An expired invitation (time moved on by editing its expiry).
    let late = invite(&stack, &admin, "movement", "arts", Role::Member, "")
        .await
        .unwrap();
    stack
        .infra
        .pg()
        .await
        .execute("UPDATE sites.invitations SET expires_at = now() - interval '1 minute' WHERE id = $1::text::uuid", &[&late.id])
        .await
        .unwrap();
    expect_error(
        accept(&stack, &ana, &late.token).await,
        Code::FailedPrecondition,
        "expired",
    );

    // An editor cannot invite; nobody invites above their own role.
    expect_error(
        invite(&stack, &bo, "movement", "boston", Role::Member, "").await,
        Code::PermissionDenied,
        "site_admin",
    );

    // An invite-only site: a join request, seen and approved by an admin.
    let cy = stack.sign_up("cy@example.org").await;
    let asked = join(&stack, &cy, "movement", "arts").await.unwrap();
    let request = asked.request.expect("a join request");
    assert!(asked.membership.is_none());
    assert_eq!(request.status, "pending");
    let again = join(&stack, &cy, "movement", "arts")
        .await
        .unwrap()
        .request
        .unwrap();
    assert_eq!(again.id, request.id, "asking twice files one request");
    let list = |token: String| {
        let stack = &stack;
        async move {
            stack
                .sites()
                .list_join_requests(with_token(
                    ListJoinRequestsRequest {
                        scope: scope("movement", "arts"),
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().requests)
        }
    };
    expect_error(list(cy.clone()).await, Code::PermissionDenied, "site_admin");
    let pending = list(admin.clone()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].message, "Let me in, please");
    let decided = stack
        .sites()
        .decide_join_request(with_token(
            DecideJoinRequestRequest {
                request_id: request.id.clone(),
                approve: true,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.status, "approved");
    assert!(list(admin.clone()).await.unwrap().is_empty());
    let cy_memberships = whoami(&stack, &cy).await.unwrap().memberships;
    assert!(
        cy_memberships
            .iter()
            .any(|m| m.site_slug == "arts" && m.role == Role::Member as i32)
    );

    // Roles are inherited down the tree: a site admin of boston runs its
    // sub-sites but not the network's other sites.
    let dee = stack.sign_up("dee@example.org").await;
    join(&stack, &dee, "movement", "boston").await.unwrap();
    let dee_id = account_id(&stack, &dee).await;
    let promoted = stack
        .sites()
        .set_role(with_token(
            SetRoleRequest {
                scope: scope("movement", "boston"),
                account_id: dee_id.clone(),
                role: Role::SiteAdmin as i32,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.role, Role::SiteAdmin as i32);
    let youth = create_site(&stack, &dee, "movement", "youth", "boston")
        .await
        .unwrap();
    assert_eq!(youth.depth, 2);
    publish_as(&stack, &dee, "movement", "youth", "Inherited editor")
        .await
        .unwrap();
    expect_error(
        create_site(&stack, &dee, "movement", "top", "").await,
        Code::PermissionDenied,
        "network_admin",
    );
    expect_error(
        stack
            .sites()
            .update_site(with_token(
                UpdateSiteRequest {
                    site: scope("movement", "arts"),
                    settings: Some(settings("Mine")),
                },
                &dee,
            ))
            .await,
        Code::PermissionDenied,
        "site_admin",
    );
    // Nesting is bounded.
    create_site(&stack, &dee, "movement", "level3", "youth")
        .await
        .unwrap();
    create_site(&stack, &dee, "movement", "level4", "level3")
        .await
        .unwrap();
    expect_error(
        create_site(&stack, &dee, "movement", "level5", "level4").await,
        Code::InvalidArgument,
        "parent_site_slug",
    );

    // Rename keeps old links working; move; archive and restore.
    let renamed = stack
        .sites()
        .rename_site(with_token(
            RenameSiteRequest {
                site: scope("movement", "boston"),
                new_slug: "boston-ma".into(),
                new_name: "Boston, MA".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.slug.as_str(), renamed.name.as_str()),
        ("boston-ma", "Boston, MA")
    );
    let by_old = stack
        .sites()
        .get_site(GetSiteRequest {
            site_id: String::new(),
            network_slug: "movement".into(),
            site_slug: "boston".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_old.id, renamed.id);
    expect_error(
        stack
            .sites()
            .move_site(with_token(
                MoveSiteRequest {
                    site: scope("movement", "boston-ma"),
                    new_parent_site_slug: "level3".into(),
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
        "under itself",
    );
    let moved = stack
        .sites()
        .move_site(with_token(
            MoveSiteRequest {
                site: scope("movement", "level3"),
                new_parent_site_slug: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((moved.depth, moved.parent_site_id.as_str()), (1, ""));
    let level4 = stack
        .sites()
        .get_site(GetSiteRequest {
            site_id: String::new(),
            network_slug: "movement".into(),
            site_slug: "level4".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(level4.depth, 2, "the subtree moved along");
    expect_error(
        stack
            .sites()
            .archive_site(with_token(
                ArchiveSiteRequest {
                    site: scope("movement", "level3"),
                },
                &admin,
            ))
            .await,
        Code::FailedPrecondition,
        "level4",
    );
    let archived = stack
        .sites()
        .archive_site(with_token(
            ArchiveSiteRequest {
                site: scope("movement", "level4"),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archived);
    expect_error(
        publish_as(&stack, &admin, "movement", "level4", "Too late").await,
        Code::FailedPrecondition,
        "archived",
    );
    let listed = stack
        .sites()
        .list_sites(ListSitesRequest {
            network_slug: "movement".into(),
            include_archived: false,
        })
        .await
        .unwrap()
        .into_inner()
        .sites;
    assert!(!listed.iter().any(|s| s.slug == "level4"));
    let restored = stack
        .sites()
        .restore_site(with_token(
            RestoreSiteRequest {
                site: scope("movement", "level4"),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!restored.archived);

    // Leaving and removal.
    stack
        .sites()
        .leave(with_token(
            LeaveRequest {
                scope: scope("movement", "boston-ma"),
            },
            &ana,
        ))
        .await
        .unwrap();
    assert!(whoami(&stack, &ana).await.unwrap().memberships.is_empty());
    let bo_id = account_id(&stack, &bo).await;
    expect_error(
        stack
            .sites()
            .remove_member(with_token(
                RemoveMemberRequest {
                    scope: scope("movement", "boston-ma"),
                    account_id: bo_id.clone(),
                },
                &bo,
            ))
            .await,
        Code::PermissionDenied,
        "site_admin",
    );
    stack
        .sites()
        .remove_member(with_token(
            RemoveMemberRequest {
                scope: scope("movement", "boston-ma"),
                account_id: bo_id,
            },
            &admin,
        ))
        .await
        .unwrap();
    expect_error(
        publish_as(&stack, &bo, "movement", "boston-ma", "Gone").await,
        Code::PermissionDenied,
        "editor",
    );
    expect_error(
        stack
            .sites()
            .leave(with_token(
                LeaveRequest {
                    scope: scope("movement", ""),
                },
                &admin,
            ))
            .await,
        Code::FailedPrecondition,
        "last admin",
    );
    let members = stack
        .sites()
        .list_members(with_token(
            ListMembersRequest {
                scope: scope("movement", ""),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::NetworkAdmin as i32);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_is_checked_rate_limited_and_ends_with_sign_out() {
    let stack = Stack::start().await;
    let mut sites = stack.sites();
    let token = stack.sign_up("Eve@Example.org").await;
    expect_error(
        sites
            .sign_up(SignUpRequest {
                email: "eve@example.org".into(),
                password: PASSWORD.into(),
                display_name: "Eve 2".into(),
            })
            .await,
        Code::AlreadyExists,
        "email",
    );
    for (email, password, name, field) in [
        ("not-an-email", PASSWORD, "X", "email"),
        ("x@example.org", "short", "X", "password"),
        ("x@example.org", &"p".repeat(300) as &str, "X", "password"),
        ("x@example.org", PASSWORD, "", "display_name"),
    ] {
        expect_error(
            sites
                .sign_up(SignUpRequest {
                    email: email.into(),
                    password: password.into(),
                    display_name: name.into(),
                })
                .await,
            Code::InvalidArgument,
            field,
        );
    }
    let accounts = count(&stack, "SELECT count(*) FROM sites.accounts").await;
    assert_eq!(accounts, 1, "nothing was made by refused sign-ups");
    // Personal data is sealed in the event: the email is not in it.
    let events = count(&stack, "SELECT count(*) FROM sites.events WHERE position(convert_to('eve@example.org', 'UTF8') in payload) > 0").await;
    assert_eq!(events, 0);

    let sign_in = |password: &'static str| {
        let mut sites = stack.sites();
        async move {
            sites
                .sign_in(SignInRequest {
                    email: " EVE@example.org".into(),
                    password: password.into(),
                })
                .await
        }
    };
    let good = sign_in(PASSWORD).await.unwrap().into_inner();
    assert_eq!(good.account.unwrap().email, "eve@example.org");
    expect_error(
        sign_in("wrong password!").await,
        Code::Unauthenticated,
        "password",
    );
    expect_error(
        sites
            .sign_in(SignInRequest {
                email: "nobody@example.org".into(),
                password: PASSWORD.into(),
            })
            .await,
        Code::Unauthenticated,
        "password",
    );
    // Five a minute per email: the limit holds even for the right password.
    for _ in 0..3 {
        let _ = sign_in("wrong password!").await;
    }
    expect_error(sign_in(PASSWORD).await, Code::ResourceExhausted, "sign-in");

    // Sign-out ends the session everywhere it is checked.
    whoami(&stack, &token).await.unwrap();
    sites
        .sign_out(with_token(SignOutRequest {}, &token))
        .await
        .unwrap();
    expect_error(
        whoami(&stack, &token).await,
        Code::Unauthenticated,
        "session",
    );
    whoami(&stack, &good.token).await.unwrap();
    stack.stop().await;
}

async fn access_at(
    stack: &Stack,
    token: Option<&str>,
    scope: Option<Scope>,
) -> Result<Access, tonic::Status> {
    let request = GetAccessRequest { scope };
    let request = match token {
        Some(token) => with_token(request, token),
        None => tonic::Request::new(request),
    };
    stack
        .sites()
        .get_access(request)
        .await
        .map(|response| response.into_inner())
}

/// `GetAccess` (one statement for the token's session, the scope and the
/// roles): each way to name a scope, each kind of caller, each error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_is_answered_for_every_scope_and_caller() {
    let stack = Stack::start().await;
    stack.onboard("movement", "The Movement").await;
    stack.onboard("other", "Other").await;
    let admin = stack.admin("movement");
    create_site(&stack, &admin, "movement", "boston", "")
        .await
        .unwrap();
    let arts = create_site(&stack, &admin, "movement", "arts", "boston")
        .await
        .unwrap();
    let ed = stack.sign_up("ed@example.org").await;
    let invitation = invite(
        &stack,
        &admin,
        "movement",
        "boston",
        Role::Editor,
        "ed@example.org",
    )
    .await
    .unwrap();
    accept(&stack, &ed, &invitation.token).await.unwrap();
    let stranger = stack.sign_up("stranger@example.org").await;
    let ed_id = account_id(&stack, &ed).await;

    // By slugs: the role at the site, inherited by its child site; at the
    // network itself Ed holds none but belongs to it.
    let at_boston = access_at(&stack, Some(&ed), scope("movement", "boston"))
        .await
        .unwrap();
    assert_eq!(at_boston.role, Role::Editor as i32);
    assert_eq!(at_boston.account_id, ed_id);
    assert!(at_boston.network_member && at_boston.writable);
    assert_eq!(at_boston.site.as_ref().unwrap().slug, "boston");
    assert_eq!(at_boston.network.as_ref().unwrap().slug, "movement");
    let at_arts = access_at(&stack, Some(&ed), scope("movement", "arts"))
        .await
        .unwrap();
    assert_eq!(at_arts.role, Role::Editor as i32, "inherited from boston");
    let at_network = access_at(&stack, Some(&ed), scope("movement", ""))
        .await
        .unwrap();
    assert_eq!(at_network.role, Role::Unspecified as i32);
    assert!(at_network.network_member && at_network.site.is_none());
    // The network's admin everywhere in it; nothing in another network.
    let admin_at_arts = access_at(&stack, Some(&admin), scope("movement", "arts"))
        .await
        .unwrap();
    assert_eq!(admin_at_arts.role, Role::NetworkAdmin as i32);
    let elsewhere = access_at(&stack, Some(&admin), scope("other", ""))
        .await
        .unwrap();
    assert_eq!(elsewhere.role, Role::Unspecified as i32);
    assert!(!elsewhere.network_member);
    // A stranger and nobody: no role, no membership.
    for token in [Some(stranger.as_str()), None] {
        let access = access_at(&stack, token, scope("movement", "boston"))
            .await
            .unwrap();
        assert_eq!(access.role, Role::Unspecified as i32, "{token:?}");
        assert!(!access.network_member, "{token:?}");
        assert_eq!(access.account_id.is_empty(), token.is_none());
    }

    // By the site's id, and by a former slug of a renamed site.
    let by_id = access_at(
        &stack,
        Some(&ed),
        Some(Scope {
            site_id: arts.id.clone(),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(by_id.site.as_ref().unwrap().slug, "arts");
    assert_eq!(by_id.role, Role::Editor as i32);
    stack
        .sites()
        .rename_site(with_token(
            RenameSiteRequest {
                site: scope("movement", "boston"),
                new_slug: "bos".into(),
                new_name: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let renamed = access_at(&stack, Some(&ed), scope("movement", "boston"))
        .await
        .unwrap();
    assert_eq!(renamed.site.as_ref().unwrap().slug, "bos");
    assert_eq!(renamed.role, Role::Editor as i32);

    // Errors name the field.
    expect_error(
        access_at(&stack, Some(&ed), scope("nowhere", "")).await,
        Code::NotFound,
        "scope.network_slug",
    );
    expect_error(
        access_at(&stack, Some(&ed), scope("movement", "nowhere")).await,
        Code::NotFound,
        "scope.site_slug",
    );
    expect_error(
        access_at(&stack, None, scope("Not A Slug", "")).await,
        Code::InvalidArgument,
        "scope.network_slug",
    );
    expect_error(
        access_at(
            &stack,
            None,
            Some(Scope {
                site_id: "not-a-uuid".into(),
                ..Default::default()
            }),
        )
        .await,
        Code::InvalidArgument,
        "scope.site_id",
    );
    expect_error(
        access_at(
            &stack,
            None,
            Some(Scope {
                site_id: uuid::Uuid::now_v7().to_string(),
                ..Default::default()
            }),
        )
        .await,
        Code::NotFound,
        "site_id",
    );
    expect_error(
        access_at(&stack, None, None).await,
        Code::InvalidArgument,
        "scope",
    );
    expect_error(
        access_at(&stack, Some("not-a-token"), scope("movement", "")).await,
        Code::Unauthenticated,
        "authorization",
    );
    // An ended session is refused though its token still verifies.
    stack
        .sites()
        .sign_out(with_token(SignOutRequest {}, &ed))
        .await
        .unwrap();
    expect_error(
        access_at(&stack, Some(&ed), scope("movement", "arts")).await,
        Code::Unauthenticated,
        "session has ended",
    );
    stack.stop().await;
}
