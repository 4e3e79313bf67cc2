//! Tenant isolation: members, editors and admins of one network try to read
//! or change another network's private data, members and settings through
//! every API. All are denied, and nothing changes.

use anp_proto::content::v1::EditPostRequest;
use anp_proto::ops::v1::ListNetworksRequest;
use anp_proto::sites::v1::*;
use futures::future::BoxFuture;
use tonic::{Code, Status};

use crate::harness::{Stack, count, with_token};
use crate::people::{accept, create_site, invite, join, publish_as, scope, settings};

/// Drops a call's answer: only whether it was refused matters.
fn ok<T>(_: T) {}

type Attempt = Box<dyn Fn(String) -> BoxFuture<'static, Result<(), Status>> + Send + Sync>;

fn attempt<F, Fut>(call: F) -> Attempt
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Status>> + Send + 'static,
{
    Box::new(move |token| Box::pin(call(token)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_role_in_one_network_reaches_another() {
    let stack = Stack::start().await;
    // Network alpha: an admin, an editor and a member of site a1.
    stack.onboard("alpha", "Alpha").await;
    let admin_a = stack.admin("alpha");
    create_site(&stack, &admin_a, "alpha", "a1", "")
        .await
        .unwrap();
    let editor_a = stack.sign_up("editor@alpha.example.org").await;
    let invitation = invite(&stack, &admin_a, "alpha", "a1", Role::Editor, "")
        .await
        .unwrap();
    accept(&stack, &editor_a, &invitation.token).await.unwrap();
    let member_a = stack.sign_up("member@alpha.example.org").await;
    join(&stack, &member_a, "alpha", "a1").await.unwrap();

    // Network beta: an invite-only site with a member, a pending join
    // request and a post.
    let beta_id = stack.onboard("beta", "Beta").await.network.unwrap().id;
    let admin_b = stack.admin("beta");
    let b1 = create_site(&stack, &admin_b, "beta", "b1", "")
        .await
        .unwrap();
    create_site(&stack, &admin_b, "beta", "b2", "")
        .await
        .unwrap();
    let mut private = settings("B1 private");
    private.join_policy = JoinPolicy::InviteOnly as i32;
    stack
        .sites()
        .update_site(with_token(
            UpdateSiteRequest {
                site: scope("beta", "b1"),
                settings: Some(private),
            },
            &admin_b,
        ))
        .await
        .unwrap();
    let dave = stack.sign_up("dave@beta.example.org").await;
    let invitation = invite(&stack, &admin_b, "beta", "b1", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &dave, &invitation.token).await.unwrap();
    let dave_id = stack
        .sites()
        .who_am_i(with_token(WhoAmIRequest {}, &dave))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id;
    let carol = stack.sign_up("carol@beta.example.org").await;
    let request = join(&stack, &carol, "beta", "b1")
        .await
        .unwrap()
        .request
        .unwrap();
    let post_b = publish_as(&stack, &admin_b, "beta", "b1", "Beta's post")
        .await
        .unwrap();

    let sites_url = stack.sites_addr.clone();
    let content_url = stack.content_addr.clone();
    let sites = move || {
        anp_proto::sites::v1::sites_service_client::SitesServiceClient::new(
            tonic::transport::Channel::from_shared(format!("http://{sites_url}"))
                .unwrap()
                .connect_lazy(),
        )
    };
    let content = move || {
        anp_proto::content::v1::content_service_client::ContentServiceClient::new(
            tonic::transport::Channel::from_shared(format!("http://{content_url}"))
                .unwrap()
                .connect_lazy(),
        )
    };
    let by_id = Some(Scope {
        site_id: b1.id.clone(),
        ..Default::default()
    });
    let attempts: Vec<(&str, Attempt)> = vec![
        ("list the network's members", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.list_members(with_token(
                        ListMembersRequest {
                            scope: scope("beta", ""),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("list a site's members", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.list_members(with_token(
                        ListMembersRequest {
                            scope: scope("beta", "b1"),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("list join requests", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.list_join_requests(with_token(
                        ListJoinRequestsRequest {
                            scope: scope("beta", "b1"),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("approve a join request", {
            let (sites, id) = (sites.clone(), request.id.clone());
            attempt(move |t| {
                let (mut s, id) = (sites(), id.clone());
                async move {
                    s.decide_join_request(with_token(
                        DecideJoinRequestRequest {
                            request_id: id,
                            approve: true,
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("change a site's settings", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.update_site(with_token(
                        UpdateSiteRequest {
                            site: scope("beta", "b1"),
                            settings: Some(settings("Taken over")),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("change a site's settings by its id", {
            let (sites, by_id) = (sites.clone(), by_id.clone());
            attempt(move |t| {
                let (mut s, site) = (sites(), by_id.clone());
                async move {
                    s.update_site(with_token(
                        UpdateSiteRequest {
                            site,
                            settings: Some(settings("Taken over")),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("rename a site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.rename_site(with_token(
                        RenameSiteRequest {
                            site: scope("beta", "b1"),
                            new_slug: "mine".into(),
                            new_name: String::new(),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("move a site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.move_site(with_token(
                        MoveSiteRequest {
                            site: scope("beta", "b1"),
                            new_parent_site_slug: "b2".into(),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("archive a site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.archive_site(with_token(
                        ArchiveSiteRequest {
                            site: scope("beta", "b1"),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("create a top-level site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.create_site(with_token(
                        CreateSiteRequest {
                            network_slug: "beta".into(),
                            slug: "intruder".into(),
                            name: "Intruder".into(),
                            ..Default::default()
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("create a sub-site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.create_site(with_token(
                        CreateSiteRequest {
                            network_slug: "beta".into(),
                            slug: "intruder".into(),
                            name: "Intruder".into(),
                            parent_site_slug: "b1".into(),
                            ..Default::default()
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("invite to the network", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.invite(with_token(
                        InviteRequest {
                            scope: scope("beta", ""),
                            role: Role::Member as i32,
                            ttl_hours: 0,
                            email: String::new(),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("invite to a site", {
            let sites = sites.clone();
            attempt(move |t| {
                let mut s = sites();
                async move {
                    s.invite(with_token(
                        InviteRequest {
                            scope: scope("beta", "b1"),
                            role: Role::Member as i32,
                            ttl_hours: 0,
                            email: String::new(),
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("change a member's role", {
            let (sites, id) = (sites.clone(), dave_id.clone());
            attempt(move |t| {
                let (mut s, id) = (sites(), id.clone());
                async move {
                    s.set_role(with_token(
                        SetRoleRequest {
                            scope: scope("beta", "b1"),
                            account_id: id,
                            role: Role::Editor as i32,
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("remove a member", {
            let (sites, id) = (sites.clone(), dave_id.clone());
            attempt(move |t| {
                let (mut s, id) = (sites(), id.clone());
                async move {
                    s.remove_member(with_token(
                        RemoveMemberRequest {
                            scope: scope("beta", "b1"),
                            account_id: id,
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("publish a post", {
            let content = content.clone();
            attempt(move |t| {
                let mut c = content();
                async move {
                    c.publish_post(with_token(
                        anp_proto::content::v1::PublishPostRequest {
                            network_slug: "beta".into(),
                            site_slug: "b1".into(),
                            title: "Intrusion".into(),
                            body_markdown: "x".into(),
                            lang: "en".into(),
                            ..Default::default()
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
        ("edit a post", {
            let (content, id) = (content.clone(), post_b.clone());
            attempt(move |t| {
                let (mut c, id) = (content(), id.clone());
                async move {
                    c.edit_post(with_token(
                        EditPostRequest {
                            post_id: id,
                            expected_version: 0,
                            title: "Defaced".into(),
                            body_markdown: "x".into(),
                            lang: String::new(),
                            ..Default::default()
                        },
                        &t,
                    ))
                    .await
                    .map(ok)
                }
            })
        }),
    ];

    let sites_events = count(&stack, "SELECT count(*) FROM sites.events").await;
    let content_events = count(&stack, "SELECT count(*) FROM content.events").await;
    for (who, token) in [
        ("member", &member_a),
        ("editor", &editor_a),
        ("network admin", &admin_a),
    ] {
        for (what, call) in &attempts {
            let result = call(token.clone()).await;
            let status = result.expect_err(&format!("alpha's {who} must not {what} in beta"));
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "alpha's {who}: {what}: {status:?}"
            );
        }
        // Nor does any of them hold a role there, or reach the ops API.
        let access = stack
            .sites()
            .get_access(with_token(
                GetAccessRequest {
                    scope: scope("beta", "b1"),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(access.role, Role::Unspecified as i32, "{who}");
        let ops = stack
            .ops()
            .list_networks(with_token(ListNetworksRequest {}, token))
            .await;
        assert_eq!(
            ops.unwrap_err().code(),
            Code::Unauthenticated,
            "{who} on the ops API"
        );
        // Nor the other network's archive: not from the ops API, nor from
        // the content service's archive peer (which takes grants only).
        let export = stack
            .ops()
            .export_network(with_token(
                anp_proto::ops::v1::ExportNetworkRequest {
                    slug: "beta".into(),
                },
                token,
            ))
            .await;
        assert_eq!(
            export.err().map(|status| status.code()),
            Some(Code::Unauthenticated),
            "{who} exporting"
        );
        let peer = anp_proto::archive::v1::network_archive_client::NetworkArchiveClient::new(
            tonic::transport::Channel::from_shared(format!("http://{}", stack.content_addr))
                .unwrap()
                .connect_lazy(),
        )
        .export(with_token(
            anp_proto::archive::v1::ExportRequest {
                network_id: beta_id.clone(),
            },
            token,
        ))
        .await;
        assert_eq!(
            peer.err().map(|status| status.code()),
            Some(Code::PermissionDenied),
            "{who} on content's archive"
        );
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
    let site = stack
        .sites()
        .get_site(GetSiteRequest {
            site_id: b1.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (site.slug.as_str(), site.name.as_str(), site.archived),
        ("b1", "B1 private", false)
    );
    let members = stack
        .sites()
        .list_members(with_token(
            ListMembersRequest {
                scope: scope("beta", "b1"),
            },
            &admin_b,
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].account_id.as_str(), members[0].role),
        (dave_id.as_str(), Role::Member as i32)
    );
    let pending = stack
        .sites()
        .list_join_requests(with_token(
            ListJoinRequestsRequest {
                scope: scope("beta", "b1"),
            },
            &admin_b,
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(pending.len(), 1, "the join request is still pending");
    // The same calls by beta's own admin succeed: the table can fail.
    let own = &attempts
        .iter()
        .find(|(what, _)| *what == "list a site's members")
        .unwrap()
        .1;
    own(admin_b.clone())
        .await
        .expect("beta's admin lists beta's members");
    stack.stop().await;
}
