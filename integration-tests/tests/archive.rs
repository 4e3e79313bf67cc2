//! Export of a network, import into an empty installation (same pages,
//! feeds and search), and offboarding (data deleted, members forgotten).

use std::time::Duration;

use anp_proto::content::v1::EditPostRequest;
use anp_proto::ops::v1::*;
use anp_proto::sites::v1::{
    GetAccessRequest, LeaveRequest, RenameSiteRequest, Role, Scope, SignInRequest,
};
use tonic::Code;

use crate::flow::{create_site, feed_ids, get_text, publish, search_ids};
use crate::harness::{
    OPS_TOKEN, PASSWORD, Stack, authorized, count, eventually, expect_error, with_token,
};
use crate::people::{accept, invite, publish_as};

const WAIT: Duration = Duration::from_secs(20);

async fn sign_in(stack: &Stack, email: &str) -> Result<String, tonic::Status> {
    stack
        .sites()
        .sign_in(SignInRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .map(|response| response.into_inner().token)
}

/// Feeds, search and pages of a network as a visitor sees them.
async fn view(stack: &Stack, post: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for site in ["", "boston", "artes"] {
        seen.push(format!(
            "feed {site}: {:?}",
            feed_ids(stack, "exodus", site).await
        ));
    }
    for query in ["water", "agua", "rent"] {
        seen.push(format!(
            "search {query}: {:?}",
            search_ids(stack, query, "exodus").await
        ));
    }
    for path in [
        "/n/exodus".to_owned(),
        "/n/exodus/boston".to_owned(),
        format!("/n/exodus/boston/posts/{post}"),
        "/n/exodus/artes".to_owned(),
        "/n/exodus/arts".to_owned(), // the old slug still leads there
        "/n/exodus/boston/pages/about".to_owned(),
    ] {
        let (status, body) = get_text(&stack.http(&path)).await;
        let body = body.replace(&stack.gateway_addr, "HOST");
        seen.push(format!("page {path}: {status}\n{body}"));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exported_network_imports_into_an_empty_installation_unchanged() {
    let old = Stack::start().await;
    old.onboard("exodus", "Exodus").await;
    old.onboard("other", "Other").await;
    let admin = old.admin("exodus");
    create_site(&old, "exodus", "boston", "Boston").await;
    create_site(&old, "exodus", "arts", "Arts").await;
    let editor = old.sign_up("ed@example.org").await;
    let invitation = invite(
        &old,
        &admin,
        "exodus",
        "boston",
        Role::Editor,
        "ed@example.org",
    )
    .await
    .unwrap();
    accept(&old, &editor, &invitation.token).await.unwrap();
    let water = publish(
        &old,
        "exodus",
        "boston",
        "Clean water",
        "Water for all",
        "en",
    )
    .await;
    publish(
        &old,
        "exodus",
        "boston",
        "Agua limpia",
        "Agua para todas",
        "es",
    )
    .await;
    let arts = publish(
        &old,
        "exodus",
        "arts",
        "Mural",
        "Paint the rent strike",
        "en",
    )
    .await;
    old.content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: arts.clone(),
                expected_version: 1,
                title: "Mural day".into(),
                body_markdown: "Paint the rent strike, Saturday".into(),
                lang: String::new(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    old.sites()
        .rename_site(with_token(
            RenameSiteRequest {
                site: Some(Scope {
                    network_slug: "exodus".into(),
                    site_slug: "arts".into(),
                    site_id: String::new(),
                }),
                new_slug: "artes".into(),
                new_name: "Artes".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    // A page in the menu and a public discussion with a reply.
    old.content()
        .create_page(with_token(
            anp_proto::content::v1::CreatePageRequest {
                network_slug: "exodus".into(),
                site_slug: "boston".into(),
                slug: "about".into(),
                title: "About Boston".into(),
                body_markdown: "We meet on Mondays".into(),
                lang: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let thread = old
        .content()
        .start_thread(with_token(
            anp_proto::content::v1::StartThreadRequest {
                network_slug: "exodus".into(),
                site_slug: "boston".into(),
                title: "Carpools to the march".into(),
                body_markdown: "Who drives?".into(),
                visibility: "public".into(),
                lang: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    old.content()
        .reply(with_token(
            anp_proto::content::v1::ReplyRequest {
                thread_id: thread.id.clone(),
                body_markdown: "I do, three seats".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    // A weekly meeting in the calendar (the events service's part).
    old.calendar()
        .schedule_event(with_token(
            anp_proto::calendar::v1::ScheduleEventRequest {
                network_slug: "exodus".into(),
                site_slug: "boston".into(),
                title: "Weekly meeting".into(),
                time_zone: "America/New_York".into(),
                start_local: "2026-12-01T18:00".into(),
                duration_minutes: 60,
                rrule: "FREQ=WEEKLY;COUNT=3".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    // An assembly someone said they would go to: the answer travels too.
    let assembly = old
        .calendar()
        .schedule_event(with_token(
            anp_proto::calendar::v1::ScheduleEventRequest {
                network_slug: "exodus".into(),
                site_slug: "boston".into(),
                title: "Assembly".into(),
                time_zone: "America/New_York".into(),
                start_local: (chrono::Utc::now() + chrono::Duration::days(20))
                    .format("%Y-%m-%dT18:00")
                    .to_string(),
                duration_minutes: 60,
                capacity: 10,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    old.calendar()
        .rsvp(with_token(
            anp_proto::calendar::v1::RsvpRequest {
                event_id: assembly.id.clone(),
                original_local: String::new(),
                going: true,
            },
            &admin,
        ))
        .await
        .unwrap();
    create_site(&old, "other", "elsewhere", "Elsewhere").await;
    let other_post = publish(&old, "other", "elsewhere", "Far", "Not exported", "en").await;
    eventually(
        WAIT,
        "every post in the old installation's feeds",
        || async {
            let feed = feed_ids(&old, "exodus", "").await;
            let renamed = get_text(&old.http("/n/exodus/artes"))
                .await
                .1
                .contains("Mural day");
            // The pages show the upcoming events too.
            let network_page = get_text(&old.http("/n/exodus")).await.1;
            let events =
                network_page.contains("Weekly meeting") && network_page.contains(&assembly.id);
            (feed.len() == 3
                && renamed
                && events
                && search_ids(&old, "saturday", "exodus").await.len() == 1)
                .then_some(())
        },
    )
    .await;
    let before = view(&old, &water).await;

    // Export needs its scope.
    let token = old
        .ops()
        .create_token(authorized(CreateTokenRequest {
            name: "reader".into(),
            scopes: vec!["networks:read".into()],
        }))
        .await
        .unwrap()
        .into_inner()
        .token;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exodus.tar");
    let denied = anp_archive::client::export(&mut old.ops(), &token, "exodus", &path).await;
    assert!(
        matches!(&denied, Err(anp_archive::ArchiveError::Grpc(status)) if status.code() == Code::PermissionDenied),
        "{denied:?}"
    );
    assert!(!path.exists());
    let missing = anp_archive::client::export(&mut old.ops(), OPS_TOKEN, "nowhere", &path).await;
    assert!(
        matches!(&missing, Err(anp_archive::ArchiveError::Grpc(status)) if status.code() == Code::NotFound),
        "{missing:?}"
    );

    let manifest = anp_archive::client::export(&mut old.ops(), OPS_TOKEN, "exodus", &path)
        .await
        .expect("export");
    assert_eq!(manifest.network_slug, "exodus");
    assert_eq!(manifest.account_keys.lines, 2, "the admin and the editor");
    let content = manifest
        .services
        .iter()
        .find(|service| service.service == "content")
        .expect("content in the manifest");
    assert_eq!(
        content.file.lines, 7,
        "three posts, an edit, a page, a thread and its reply"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the archive is its owner's alone");
    }
    // Only this network's data, and personal data sealed.
    let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
    let other_id = old
        .ops()
        .get_network(authorized(GetNetworkRequest {
            slug: "other".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .network
        .unwrap()
        .id;
    assert!(!bytes.contains(&other_id), "another network's events");
    assert!(!bytes.contains(&other_post));
    assert!(!bytes.contains("ed@example.org"), "an email in clear");

    // A damaged archive is refused before anything is sent.
    let damaged = dir.path().join("damaged.tar");
    std::fs::write(
        &damaged,
        bytes.replacen("PostPublished", "PostPublishee", 1),
    )
    .unwrap();
    let new = Stack::start().await;
    let refused = anp_archive::client::import(&mut new.ops(), OPS_TOKEN, &damaged).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.to_string().contains("SHA-256")),
        "{refused:?}"
    );
    assert_eq!(count(&new, "SELECT count(*) FROM sites.networks").await, 0);

    let imported = anp_archive::client::import(&mut new.ops(), OPS_TOKEN, &path)
        .await
        .expect("import");
    assert_eq!(imported.network.unwrap().slug, "exodus");
    assert_eq!(imported.accounts_imported, 2);
    let content = imported
        .services
        .iter()
        .find(|service| service.service == "content")
        .unwrap();
    assert_eq!((content.imported, content.skipped), (7, 0));

    // The same pages, feeds and search results.
    let after = eventually(WAIT, "the imported network projected", || async {
        let after = view(&new, &water).await;
        (after == before).then_some(after)
    })
    .await;
    assert!(after.iter().any(|seen| seen.contains("Mural day")));
    // Members sign in with their passwords and keep their roles.
    let editor = sign_in(&new, "ed@example.org")
        .await
        .expect("editor signs in");
    let access = new
        .sites()
        .get_access(with_token(
            GetAccessRequest {
                scope: crate::people::scope("exodus", "boston"),
            },
            &editor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(access.role, Role::Editor as i32);
    publish_as(&new, &editor, "exodus", "boston", "Written after the move")
        .await
        .expect("the editor publishes in the new installation");

    // The content service's own tables came along: the site's list.
    let listed = new
        .content()
        .list_posts(anp_proto::content::v1::ListPostsRequest {
            network_slug: "exodus".into(),
            site_slug: "boston".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.posts.len(), 3, "two imported, one written after");
    let menu = new
        .content()
        .list_pages(anp_proto::content::v1::ListPagesRequest {
            network_slug: "exodus".into(),
            site_slug: "boston".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pages;
    assert_eq!(menu.len(), 1);
    assert_eq!(menu[0].slug, "about");
    let discussion = new
        .content()
        .get_thread(anp_proto::content::v1::GetThreadRequest {
            thread_id: thread.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(discussion.replies.len(), 1);
    let threads = new
        .content()
        .list_threads(anp_proto::content::v1::ListThreadsRequest {
            network_slug: "exodus".into(),
            site_slug: "boston".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .threads;
    assert_eq!(threads.len(), 1, "the threads table came along");
    let ics = |stack: &Stack| {
        let url = stack.http("/n/exodus/boston/calendar.ics");
        async move {
            let text = get_text(&url).await.1;
            // The same calendar but for the moment it was written.
            text.lines()
                .filter(|line| !line.starts_with("DTSTAMP"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    assert_eq!(ics(&new).await, ics(&old).await, "the calendar came along");
    assert!(ics(&new).await.contains("Weekly meeting"));
    let answers = new
        .calendar()
        .get_rsvps(anp_proto::calendar::v1::GetRsvpsRequest {
            event_id: assembly.id.clone(),
            original_local: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answers.going, answers.capacity),
        (1, 10),
        "the RSVP came along"
    );
    // Importing again changes nothing.
    let again = anp_archive::client::import(&mut new.ops(), OPS_TOKEN, &path)
        .await
        .expect("import again");
    assert!(again.services.iter().all(|service| service.imported == 0));
    assert_eq!(again.accounts_existing, 2);
    eventually(WAIT, "the new post, and no duplicates", || async {
        (feed_ids(&new, "exodus", "boston").await.len() == 3).then_some(())
    })
    .await;
    assert_eq!(
        count(
            &new,
            "SELECT count(*) FROM content.events WHERE event_type = 'PostPublished'"
        )
        .await,
        4
    );
    old.stop().await;
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offboarding_deletes_the_network_and_forgets_members_it_alone_had() {
    let stack = Stack::start().await;
    let leaving = stack.onboard("leaving", "Leaving").await;
    stack.onboard("staying", "Staying").await;
    let network_id = leaving.network.unwrap().id;
    create_site(&stack, "leaving", "city", "City").await;
    create_site(&stack, "staying", "town", "Town").await;
    // One member of both networks, one of the leaving network only, and
    // one who leaves after the export.
    let mut tokens = Vec::new();
    for (email, networks) in [
        ("both@example.org", vec!["leaving", "staying"]),
        ("only@example.org", vec!["leaving"]),
        ("late@example.org", vec!["leaving"]),
    ] {
        let token = stack.sign_up(email).await;
        for network in networks {
            let site = if network == "leaving" { "city" } else { "town" };
            let invitation = invite(
                &stack,
                &stack.admin(network),
                network,
                site,
                Role::Editor,
                email,
            )
            .await
            .unwrap();
            accept(&stack, &token, &invitation.token).await.unwrap();
        }
        tokens.push(token);
    }
    let gone = publish(&stack, "leaving", "city", "Farewell", "Goodbye post", "en").await;
    let kept = publish(
        &stack,
        "staying",
        "town",
        "Still here",
        "Goodbye post too",
        "en",
    )
    .await;
    eventually(WAIT, "both posts projected", || async {
        let hits = search_ids(&stack, "goodbye", "").await;
        (hits.contains(&gone) && hits.contains(&kept)).then_some(())
    })
    .await;
    // The calendar: a staying event co-hosted by the leaving site, and a
    // leaving event someone said they would go to.
    let when = (chrono::Utc::now() + chrono::Duration::days(20))
        .format("%Y-%m-%dT18:00")
        .to_string();
    let schedule = |network: &str, site: &str| anp_proto::calendar::v1::ScheduleEventRequest {
        network_slug: network.into(),
        site_slug: site.into(),
        title: format!("Meeting of {site}"),
        time_zone: "Europe/Madrid".into(),
        start_local: when.clone(),
        duration_minutes: 60,
        ..Default::default()
    };
    let mut calendar = stack.calendar();
    let shared_event = calendar
        .schedule_event(with_token(
            schedule("staying", "town"),
            &stack.admin("staying"),
        ))
        .await
        .unwrap()
        .into_inner();
    calendar
        .invite_cohost(with_token(
            anp_proto::calendar::v1::CohostRequest {
                event_id: shared_event.id.clone(),
                network_slug: "leaving".into(),
                site_slug: "city".into(),
            },
            &stack.admin("staying"),
        ))
        .await
        .unwrap();
    calendar
        .decide_cohost(with_token(
            anp_proto::calendar::v1::DecideCohostRequest {
                event_id: shared_event.id.clone(),
                network_slug: "leaving".into(),
                site_slug: "city".into(),
                accept: true,
            },
            &stack.admin("leaving"),
        ))
        .await
        .unwrap();
    let own_event = calendar
        .schedule_event(with_token(
            schedule("leaving", "city"),
            &stack.admin("leaving"),
        ))
        .await
        .unwrap()
        .into_inner();
    calendar
        .rsvp(with_token(
            anp_proto::calendar::v1::RsvpRequest {
                event_id: own_event.id.clone(),
                original_local: String::new(),
                going: true,
            },
            &tokens[0],
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leaving.tar");

    let offboard = |exported: Vec<anp_proto::archive::v1::ServiceTally>, confirm: &str| {
        let request = OffboardNetworkRequest {
            slug: "leaving".into(),
            confirm_slug: confirm.into(),
            exported,
        };
        let mut ops = stack.ops();
        async move { ops.offboard_network(authorized(request)).await }
    };
    // Active networks are not offboarded; the slug must be repeated; the
    // export's tallies are needed.
    let manifest = anp_archive::client::export(&mut stack.ops(), OPS_TOKEN, "leaving", &path)
        .await
        .unwrap();
    expect_error(
        offboard(manifest.to_proto().services, "leaving").await,
        Code::FailedPrecondition,
        "suspend",
    );
    stack
        .ops()
        .suspend_network(authorized(SuspendNetworkRequest {
            slug: "leaving".into(),
            notice: "Moving out".into(),
        }))
        .await
        .unwrap();
    let manifest = anp_archive::client::export(&mut stack.ops(), OPS_TOKEN, "leaving", &path)
        .await
        .unwrap();
    expect_error(
        offboard(manifest.to_proto().services, "leavin").await,
        Code::InvalidArgument,
        "confirm_slug",
    );
    expect_error(
        offboard(vec![], "leaving").await,
        Code::InvalidArgument,
        "exported",
    );
    // A change after the export (leaving goes on while suspended): export again.
    stack
        .sites()
        .leave(with_token(
            LeaveRequest {
                scope: crate::people::scope("leaving", "city"),
            },
            &tokens[2],
        ))
        .await
        .unwrap();
    expect_error(
        offboard(manifest.to_proto().services, "leaving").await,
        Code::FailedPrecondition,
        "export again",
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM content.events").await,
        2
    );

    let manifest = anp_archive::client::export(&mut stack.ops(), OPS_TOKEN, "leaving", &path)
        .await
        .unwrap();
    let reply = offboard(manifest.to_proto().services, "leaving")
        .await
        .expect("offboard")
        .into_inner();
    assert_eq!(reply.accounts_kept, 1, "the member of both networks");
    assert_eq!(reply.accounts_forgotten, 3, "the admin, only@ and late@");

    // The network and everything of it is gone...
    expect_error(
        stack
            .ops()
            .get_network(authorized(GetNetworkRequest {
                slug: "leaving".into(),
            }))
            .await,
        Code::NotFound,
        "leaving",
    );
    let in_network =
        |table: &str| format!("SELECT count(*) FROM {table} WHERE network_id = '{network_id}'");
    assert_eq!(count(&stack, &in_network("content.events")).await, 0);
    assert_eq!(count(&stack, &in_network("sites.events")).await, 0);
    for table in [
        "events.events",
        "events.calendar_events",
        "events.calendar_hosts",
        "events.calendar_rsvps",
    ] {
        assert_eq!(count(&stack, &in_network(table)).await, 0, "{table}");
    }
    // The other network's event stays, without its co-host that left.
    let shared_now = stack
        .calendar()
        .get_event(anp_proto::calendar::v1::GetEventRequest {
            event_id: shared_event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(shared_now.hosts.is_empty(), "{:?}", shared_now.hosts);
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM sites.events WHERE event_type = 'NetworkOffboarded'"
        )
        .await,
        1,
        "the end stays, outside the network's events"
    );
    assert_eq!(count(&stack, &in_network("sites.sites")).await, 0);
    assert_eq!(count(&stack, &in_network("sites.memberships")).await, 0);
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.account_keys").await,
        2
    );
    eventually(
        WAIT,
        "the network gone from feeds, search and pages",
        || async {
            let hits = search_ids(&stack, "goodbye", "").await;
            let umbrella = feed_ids(&stack, "", "").await;
            let (status, _) = get_text(&stack.http("/n/leaving")).await;
            (hits == vec![kept.clone()] && !umbrella.contains(&gone) && status == 404).then_some(())
        },
    )
    .await;
    for table in [
        "aggregator.feed_posts",
        "aggregator.post_versions",
        "aggregator.usage_network_bytes",
    ] {
        assert_eq!(count(&stack, &in_network(table)).await, 0, "{table}");
    }
    // It stores nothing from its end on (its counts stay for billing).
    assert_eq!(
        count(
            &stack,
            &format!(
                "SELECT stored_bytes FROM aggregator.usage_stored \
                 WHERE network_id = '{network_id}' ORDER BY day DESC LIMIT 1"
            )
        )
        .await,
        0
    );
    assert!(count(&stack, &in_network("aggregator.usage_daily")).await > 0);
    assert_eq!(
        count(
            &stack,
            &format!("SELECT count(*) FROM aggregator.feed_timelines WHERE post_id = '{gone}'")
        )
        .await,
        0,
        "the network's post left every timeline"
    );
    eventually(WAIT, "the network's events gone from the bus", || async {
        let stream = stack
            .infra
            .jetstream()
            .await
            .get_stream(&stack.infra.bus.stream_name)
            .await
            .unwrap();
        let subject = stack
            .infra
            .bus
            .subject("content", &network_id, "PostPublished");
        stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    // ...members it alone had are forgotten; the member of both stays.
    expect_error(
        sign_in(&stack, "only@example.org").await,
        Code::Unauthenticated,
        "",
    );
    expect_error(
        sign_in(&stack, "late@example.org").await,
        Code::Unauthenticated,
        "",
    );
    let both = sign_in(&stack, "both@example.org").await.expect("kept");
    publish_as(&stack, &both, "staying", "town", "Still a member")
        .await
        .expect("still an editor in the other network");
    // The audit log has it; the archive brings the network back elsewhere.
    let audit = stack
        .ops()
        .list_audit(authorized(ListAuditRequest {
            network_slug: "leaving".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        audit
            .entries
            .iter()
            .any(|entry| entry.action == "OffboardNetwork" && entry.outcome == "ok")
    );
    // The month it left is still billed: its usage up to today stays.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = eventually(WAIT, "the post counted", || async {
        let report = stack
            .ops()
            .get_usage(authorized(GetUsageRequest {
                month: month.clone(),
                network_slug: "leaving".into(),
            }))
            .await
            .expect("usage of an offboarded network")
            .into_inner();
        let month = report.networks.first()?.month?;
        (month.posts == 1).then_some(report)
    })
    .await;
    let today = usage.networks[0].days.last().unwrap();
    assert_eq!((today.sites, today.members), (0, 0), "nothing left today");
    // The network can come back here too, at once.
    let back = anp_archive::client::import(&mut stack.ops(), OPS_TOKEN, &path)
        .await
        .expect("import back into the installation it left");
    assert_eq!(back.accounts_imported, 3);
    sign_in(&stack, "only@example.org")
        .await
        .expect("a forgotten member is back with the network");
    eventually(WAIT, "the post back in feeds and search", || async {
        let hits = search_ids(&stack, "goodbye", "leaving").await;
        (feed_ids(&stack, "leaving", "city").await == vec![gone.clone()]
            && hits == vec![gone.clone()])
        .then_some(())
    })
    .await;
    let elsewhere = Stack::start().await;
    // Another network has the slug there: refused, nothing kept...
    elsewhere
        .ops()
        .onboard_network(authorized(OnboardNetworkRequest {
            slug: "leaving".into(),
            name: "Squatter".into(),
            admin_email: "squatter@example.org".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let taken = anp_archive::client::import(&mut elsewhere.ops(), OPS_TOKEN, &path).await;
    assert!(
        matches!(&taken, Err(anp_archive::ArchiveError::Grpc(status))
            if status.code() == Code::AlreadyExists && status.message().contains("slug")),
        "{taken:?}"
    );
    assert_eq!(
        count(&elsewhere, "SELECT count(*) FROM sites.account_keys").await,
        0
    );
    assert_eq!(
        count(&elsewhere, "SELECT count(*) FROM content.events").await,
        0
    );
    // ...until that one is offboarded (a network without posts).
    elsewhere
        .ops()
        .suspend_network(authorized(SuspendNetworkRequest {
            slug: "leaving".into(),
            notice: String::new(),
        }))
        .await
        .unwrap();
    let squatter = dir.path().join("squatter.tar");
    let manifest =
        anp_archive::client::export(&mut elsewhere.ops(), OPS_TOKEN, "leaving", &squatter)
            .await
            .unwrap();
    elsewhere
        .ops()
        .offboard_network(authorized(OffboardNetworkRequest {
            slug: "leaving".into(),
            confirm_slug: "leaving".into(),
            exported: manifest.to_proto().services,
        }))
        .await
        .expect("offboard a network without posts");
    anp_archive::client::import(&mut elsewhere.ops(), OPS_TOKEN, &path)
        .await
        .expect("import the offboarded network");
    eventually(WAIT, "the post back in the other installation", || async {
        (feed_ids(&elsewhere, "leaving", "city").await == vec![gone.clone()]).then_some(())
    })
    .await;
    sign_in(&elsewhere, "only@example.org")
        .await
        .expect("a forgotten member signs in where the network went");
    stack.stop().await;
    elsewhere.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archive_peers_need_a_grant_for_the_action_and_the_network() {
    use anp_proto::archive::v1::network_archive_client::NetworkArchiveClient;
    use anp_proto::archive::v1::{ExportRequest, ImportItem, PurgeRequest, import_item};

    let stack = Stack::start().await;
    let private = stack
        .onboard("private", "Private")
        .await
        .network
        .unwrap()
        .id;
    let mine = stack.onboard("mine", "Mine").await.network.unwrap().id;
    create_site(&stack, "private", "room", "Room").await;
    let post = publish(&stack, "private", "room", "Secret plan", "Meet at 9", "en").await;
    let peer = || {
        NetworkArchiveClient::new(
            tonic::transport::Channel::from_shared(format!("http://{}", stack.content_addr))
                .unwrap()
                .connect_lazy(),
        )
    };
    let signer = crate::harness::signer();
    let export = |token: Option<String>| {
        let mut client = peer();
        let network_id = private.clone();
        async move {
            let request = ExportRequest { network_id };
            let request = match token {
                Some(token) => with_token(request, &token),
                None => tonic::Request::new(request),
            };
            client.export(request).await.map(|_| ())
        }
    };
    let private_id: uuid::Uuid = private.parse().unwrap();
    let mine_id: uuid::Uuid = mine.parse().unwrap();
    let (other_key, _) = anp_session::Signer::generate().unwrap();
    expect_error(export(None).await, Code::Unauthenticated, "grant");
    // A member's session, a grant for another network or action, or one
    // signed by another key: all refused.
    expect_error(
        export(Some(stack.admin("private"))).await,
        Code::PermissionDenied,
        "authorization",
    );
    for token in [
        signer.sign_grant("ops:test", "export", mine_id).unwrap(),
        signer.sign_grant("ops:test", "purge", private_id).unwrap(),
        other_key
            .sign_grant("ops:test", "export", private_id)
            .unwrap(),
    ] {
        expect_error(
            export(Some(token)).await,
            Code::PermissionDenied,
            "authorization",
        );
    }
    // A grant for "mine" cannot purge or write into "private".
    let purge = peer()
        .purge(with_token(
            PurgeRequest {
                network_id: private.clone(),
                expected_last_event_id: String::new(),
            },
            &signer.sign_grant("ops:test", "purge", mine_id).unwrap(),
        ))
        .await;
    expect_error(purge, Code::PermissionDenied, "authorization");
    let exported: Vec<_> = {
        let mut stream = peer()
            .export(with_token(
                ExportRequest {
                    network_id: private.clone(),
                },
                &signer.sign_grant("ops:test", "export", private_id).unwrap(),
            ))
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.message().await.unwrap() {
            events.push(event);
        }
        events
    };
    assert_eq!(exported.len(), 1);
    assert!(exported[0].stream_id.ends_with(&post));
    let mut foreign = exported[0].clone();
    foreign.event_id = uuid::Uuid::now_v7().to_string();
    foreign.stream_id = format!("post-{}", uuid::Uuid::now_v7());
    let items = vec![ImportItem {
        item: Some(import_item::Item::Event(foreign)),
    }];
    let smuggled = peer()
        .import(with_token(
            tokio_stream::iter(items.clone()),
            &signer.sign_grant("ops:test", "import", mine_id).unwrap(),
        ))
        .await;
    expect_error(smuggled, Code::PermissionDenied, "network_id");
    // An import that stops before `done` keeps nothing.
    let unfinished = peer()
        .import(with_token(
            tokio_stream::iter(items),
            &signer.sign_grant("ops:test", "import", private_id).unwrap(),
        ))
        .await;
    expect_error(unfinished, Code::Aborted, "done");
    assert_eq!(
        count(&stack, "SELECT count(*) FROM content.events").await,
        1
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_archives_are_refused_naming_what_is_wrong_and_change_nothing() {
    use anp_proto::archive::v1::ServiceTally;
    use anp_proto::events::v1::Envelope;
    use anp_proto::ops::v1::archive_item::Item;

    let stack = Stack::start().await;
    let network_id = uuid::Uuid::now_v7().to_string();
    let manifest = |services: Vec<ServiceTally>, keys: u64| ArchiveManifest {
        format: anp_archive::format::FORMAT.into(),
        network_id: network_id.clone(),
        network_slug: "arrivals".into(),
        network_name: "Arrivals".into(),
        exported_at: None,
        services,
        account_keys: keys,
    };
    let tally = |service: &str, events: u64| ServiceTally {
        service: service.into(),
        events,
        last_event_id: String::new(),
    };
    let event = Envelope {
        event_id: "not-a-uuid".into(),
        stream_id: format!("network-{network_id}"),
        version: 1,
        event_type: "NetworkOnboarded".into(),
        schema_version: 1,
        service: "sites".into(),
        network_id: network_id.clone(),
        actor: "operator:test".into(),
        occurred_at: Some(anp_kit::timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    let stranger = uuid::Uuid::now_v7();
    let registered = Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        stream_id: format!("account-{stranger}"),
        event_type: "AccountRegistered".into(),
        network_id: uuid::Uuid::nil().to_string(),
        payload: prost::Message::encode_to_vec(&anp_proto::events::v1::AccountRegistered {
            account_id: stranger.to_string(),
            ..Default::default()
        }),
        ..event.clone()
    };
    let key = |bytes: usize| {
        Item::AccountKey(AccountKey {
            account_id: uuid::Uuid::now_v7().to_string(),
            key: vec![7; bytes],
        })
    };
    let cases: Vec<(Vec<Item>, Code, &str)> = vec![
        (vec![], Code::InvalidArgument, "empty"),
        (
            vec![key(32)],
            Code::InvalidArgument,
            "manifest must come first",
        ),
        (
            vec![Item::Manifest(ArchiveManifest {
                format: "tarball/9".into(),
                ..manifest(vec![], 0)
            })],
            Code::InvalidArgument,
            "manifest.format",
        ),
        (
            vec![Item::Manifest(ArchiveManifest {
                network_id: "x".into(),
                ..manifest(vec![], 0)
            })],
            Code::InvalidArgument,
            "manifest.network_id",
        ),
        (
            vec![Item::Manifest(ArchiveManifest {
                network_slug: "Not A Slug".into(),
                ..manifest(vec![], 0)
            })],
            Code::InvalidArgument,
            "manifest.network_slug",
        ),
        (
            vec![Item::Manifest(manifest(vec![tally("files", 1)], 0))],
            Code::FailedPrecondition,
            "\"files\"",
        ),
        (
            vec![Item::Manifest(manifest(vec![tally("sites", 3)], 0))],
            Code::InvalidArgument,
            "the manifest says 3",
        ),
        (
            vec![Item::Manifest(manifest(vec![], 1)), key(5)],
            Code::InvalidArgument,
            "key: must be 32 bytes",
        ),
        (
            vec![
                Item::Manifest(manifest(vec![tally("sites", 1)], 0)),
                Item::Event(event.clone()),
            ],
            Code::InvalidArgument,
            "event 0: event_id",
        ),
        (
            vec![
                Item::Manifest(manifest(vec![tally("sites", 1)], 0)),
                Item::Event(Envelope {
                    event_id: uuid::Uuid::now_v7().to_string(),
                    payload: vec![0xff, 0xff],
                    ..event.clone()
                }),
            ],
            Code::InvalidArgument,
            "does not decode",
        ),
        (
            vec![
                Item::Manifest(manifest(vec![tally("sites", 1)], 1)),
                Item::Event(registered.clone()),
                key(32),
            ],
            Code::InvalidArgument,
            "account keys must come before the events",
        ),
    ];
    // An archive that reaches into another network of this installation.
    let home = stack.onboard("home", "Home").await;
    create_site(&stack, "home", "kitchen", "Kitchen").await;
    let kitchen = stack
        .sites()
        .get_site(with_token(
            anp_proto::sites::v1::GetSiteRequest {
                site_id: String::new(),
                network_slug: "home".into(),
                site_slug: "kitchen".into(),
            },
            &stack.admin("home"),
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    let intruder = uuid::Uuid::now_v7().to_string();
    let onboarded = Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        payload: prost::Message::encode_to_vec(&anp_proto::events::v1::NetworkOnboarded {
            network_id: network_id.clone(),
            slug: "arrivals".into(),
            name: "Arrivals".into(),
            plan: "small".into(),
            quotas: None,
        }),
        ..event.clone()
    };
    let joined = |site: &str, stream: String| Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        stream_id: stream,
        version: 2,
        event_type: "MemberJoined".into(),
        payload: prost::Message::encode_to_vec(&anp_proto::events::v1::MemberJoined {
            account_id: intruder.clone(),
            network_id: network_id.clone(),
            site_id: site.into(),
            role: "site_admin".into(),
            via: "invitation".into(),
        }),
        ..event.clone()
    };
    let home_id = home.network.unwrap().id;
    let home_stream = format!("network-{home_id}");
    // Another archive of a network that is already here.
    let twin = Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        stream_id: home_stream.clone(),
        network_id: home_id.clone(),
        payload: prost::Message::encode_to_vec(&anp_proto::events::v1::NetworkOnboarded {
            network_id: home_id.clone(),
            slug: "home".into(),
            name: "Home".into(),
            plan: "small".into(),
            quotas: None,
        }),
        ..event.clone()
    };
    let cases: Vec<(Vec<Item>, Code, &str)> = cases
        .into_iter()
        .chain([
            (
                vec![
                    Item::Manifest(manifest(vec![tally("sites", 2)], 0)),
                    Item::Event(onboarded.clone()),
                    Item::Event(joined(&kitchen, format!("network-{network_id}"))),
                ],
                Code::InvalidArgument,
                "site_id is not of the manifest's network",
            ),
            (
                vec![
                    Item::Manifest(manifest(vec![tally("sites", 2)], 0)),
                    Item::Event(onboarded.clone()),
                    Item::Event(joined("", home_stream)),
                ],
                Code::InvalidArgument,
                "stream_id is not of the manifest's network",
            ),
            (
                vec![
                    Item::Manifest(ArchiveManifest {
                        network_id: home_id.clone(),
                        network_slug: "home".into(),
                        ..manifest(vec![tally("sites", 1)], 0)
                    }),
                    Item::Event(twin),
                ],
                Code::AlreadyExists,
                "stream_id",
            ),
        ])
        .collect();
    let events_before = count(&stack, "SELECT count(*) FROM sites.events").await;
    for (items, code, message) in cases {
        let items: Vec<ArchiveItem> = items
            .into_iter()
            .map(|item| ArchiveItem { item: Some(item) })
            .collect();
        let result = stack
            .ops()
            .import_network(authorized(tokio_stream::iter(items)))
            .await;
        expect_error(result, code, message);
    }
    expect_error(
        stack
            .ops()
            .export_network(authorized(ExportNetworkRequest {
                slug: "Bad Slug".into(),
            }))
            .await,
        Code::InvalidArgument,
        "network_slug",
    );
    assert_eq!(
        count(&stack, "SELECT count(*) FROM sites.events").await,
        events_before
    );
    for table in ["sites.memberships WHERE role = 3", "content.events"] {
        assert_eq!(
            count(&stack, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        count(
            &stack,
            &format!("SELECT count(*) FROM sites.networks WHERE id = '{network_id}'")
        )
        .await,
        0
    );
    stack.stop().await;
}
