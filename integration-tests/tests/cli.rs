//! `anpctl`, the operators' CLI, against a running stack.

use std::process::Command;
use std::time::Duration;

use crate::harness::{OPS_TOKEN, PASSWORD, Stack, bin_dir, eventually};

fn anpctl(stack: &Stack, token: &str, args: &[&str]) -> (bool, String, String) {
    anpctl_as(stack, token, None, args)
}

/// anpctl with a session file of its own (`session`), as a person would.
fn anpctl_as(
    stack: &Stack,
    token: &str,
    session: Option<&std::path::Path>,
    args: &[&str],
) -> (bool, String, String) {
    let mut command = Command::new(bin_dir().join("anpctl"));
    if let Some(session) = session {
        command.env("ANP_SESSION_FILE", session);
    }
    command.env("ANP_PASSWORD", PASSWORD);
    command.env_remove("ANP_SESSION_TOKEN");
    let output = command
        .args(args)
        .env("ANP_SITES_URL", format!("http://{}", stack.sites_addr))
        .env("ANP_CONTENT_URL", format!("http://{}", stack.content_addr))
        .env("ANP_EVENTS_URL", format!("http://{}", stack.events_addr))
        .env(
            "ANP_AGGREGATOR_URL",
            format!("http://{}", stack.aggregator_addr),
        )
        .env("ANP_OPS_TOKEN", token)
        .output()
        .expect("run anpctl (make test builds it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_onboard_publish_and_search_with_anpctl() {
    let stack = Stack::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session");
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = anpctl_as(&stack, OPS_TOKEN, Some(&session), args);
        assert!(ok, "anpctl {args:?} failed: {stderr}");
        stdout
    };
    let onboard = [
        "network",
        "onboard",
        "tenants",
        "--name",
        "Tenants Union",
        "--admin-email",
        "Rosa@Tenants.example.org",
        "--plan",
        "standard",
        "--sites",
        "3",
    ];
    let onboarded = run(&onboard);
    assert!(onboarded.starts_with("onboarded tenants"), "{onboarded}");
    let token = onboarded
        .split("anpctl member accept ")
        .nth(1)
        .expect("an invitation token")
        .trim()
        .to_owned();
    assert!(run(&onboard).starts_with("already onboarded"));
    let listed = run(&["network", "list"]);
    assert!(
        listed.contains("tenants\tTenants Union\tactive\tstandard\tsites 0/3\tmembers 0/2000"),
        "{listed}"
    );

    // The invited admin signs up, accepts, and works with a saved session.
    assert!(
        run(&[
            "account",
            "signup",
            "--email",
            "rosa@tenants.example.org",
            "--display-name",
            "Rosa"
        ])
        .starts_with("signed up rosa@tenants.example.org")
    );
    assert!(run(&["member", "accept", &token]).contains("tenants\tnetwork_admin"));
    assert!(run(&["account", "whoami"]).contains("Rosa <rosa@tenants.example.org>"));
    assert!(
        run(&[
            "site",
            "create",
            "tenants/chicago",
            "--name",
            "Chicago",
            "--tags",
            "housing",
            "--city",
            "Chicago",
            "--country",
            "us"
        ])
        .starts_with("created tenants/chicago")
    );
    assert!(
        run(&["site", "list", "tenants"])
            .contains("tenants/chicago\tChicago\topen\thousing\ten\tChicago, US")
    );
    let published = run(&[
        "post",
        "publish",
        "tenants/chicago",
        "--title",
        "Huelga de alquileres",
        "--body",
        "Las **inquilinas** se organizan.",
        "--lang",
        "es",
    ]);
    let post_id = published.split('\t').next().unwrap().to_owned();
    assert!(run(&["post", "get", &post_id]).contains("Las **inquilinas** se organizan."));
    eventually(
        Duration::from_secs(15),
        "the post in anpctl feed",
        || async {
            run(&["feed", "tenants/chicago"])
                .contains("Huelga de alquileres")
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "the post in anpctl search",
        || async {
            run(&["search", "inquilina", "--network", "tenants"])
                .contains("Huelga de alquileres")
                .then_some(())
        },
    )
    .await;

    // A draft, published later by hand; tags on the way.
    let draft = run(&[
        "post",
        "publish",
        "tenants/chicago",
        "--title",
        "Rent board hearing",
        "--body",
        "Come testify",
        "--tag",
        "housing",
        "--draft",
    ]);
    let draft_id = draft.split('\t').next().unwrap().to_owned();
    assert!(
        draft.contains("\tdraft\t") && draft.contains("#housing"),
        "{draft}"
    );
    assert!(run(&["post", "list", "tenants/chicago", "--status", "draft"]).contains(&draft_id));
    assert!(run(&["post", "publish-draft", &draft_id]).contains("\tpublished\t"));
    let history = run(&["post", "history", &draft_id]);
    assert!(
        history.contains("PostPublished") && history.contains("PostDrafted"),
        "{history}"
    );
    // A page in the menu, a discussion with a reply.
    let page = run(&[
        "page",
        "create",
        "tenants/chicago",
        "--slug",
        "about",
        "--title",
        "About us",
        "--body",
        "Tenants of Chicago",
    ]);
    assert!(page.contains("\tabout\tposition 1"), "{page}");
    assert!(run(&["page", "list", "tenants/chicago"]).contains("\tabout\tAbout us"));
    assert!(run(&["page", "get", "tenants/chicago", "about"]).contains("Tenants of Chicago"));
    let thread = run(&[
        "thread",
        "start",
        "tenants/chicago",
        "--title",
        "Carpool",
        "--body",
        "Who drives?",
    ]);
    let thread_id = thread.split('\t').next().unwrap().to_owned();
    assert!(thread.contains("\tmembers\tCarpool"), "{thread}");
    run(&["thread", "reply", &thread_id, "--body", "Me, three seats"]);
    let shown = run(&["thread", "get", &thread_id]);
    assert!(
        shown.contains("1 replies") && shown.contains("Me, three seats"),
        "{shown}"
    );
    run(&["thread", "moderate", &thread_id, "lock"]);
    assert!(run(&["thread", "list", "tenants/chicago"]).contains(" locked"));
    assert!(run(&["social", "tenants/chicago", "--status"]).is_empty());

    // The calendar: schedule, edit, answer, import, export.
    let start = (chrono::Utc::now() + chrono::Duration::days(20))
        .format("%Y-%m-%dT18:30")
        .to_string();
    let scheduled = run(&[
        "event",
        "schedule",
        "tenants/chicago",
        "--title",
        "Rent strike meeting",
        "--time-zone",
        "America/Chicago",
        "--start",
        &start,
        "--minutes",
        "90",
        "--capacity",
        "1",
    ]);
    let event_id = scheduled.split('\t').next().unwrap().to_owned();
    let edited = run(&[
        "event",
        "edit",
        &event_id,
        "--title",
        "Rent strike assembly",
    ]);
    assert!(edited.contains("seq 1\tRent strike assembly"), "{edited}");
    assert!(run(&["event", "rsvp", &event_id]).contains("you: going"));
    let rsvps = run(&["event", "rsvps", &event_id]);
    assert!(
        rsvps.contains("1 going, 0 waitlisted (1 places)") && rsvps.contains("Rosa"),
        "{rsvps}"
    );
    let ics_file = home.path().join("other.ics");
    std::fs::write(
        &ics_file,
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:fair@other.example\r\n\
         DTSTART;VALUE=DATE:20270301\r\nSUMMARY:Book fair\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let imported = run(&[
        "event",
        "import",
        "tenants/chicago",
        "--file",
        ics_file.to_str().unwrap(),
    ]);
    assert!(
        imported.contains("created 1, updated 0, unchanged 0"),
        "{imported}"
    );
    let ics = run(&["event", "ics", "tenants"]);
    assert!(
        ics.contains(&format!("UID:{event_id}@anp")) && ics.contains("SUMMARY:Book fair"),
        "{ics}"
    );

    // Errors are reported, with the field, and a non-zero exit.
    let (ok, _, stderr) = anpctl(
        &stack,
        "wrong-token",
        &[
            "network",
            "onboard",
            "other",
            "--name",
            "Other",
            "--admin-email",
            "a@b.org",
        ],
    );
    assert!(!ok && stderr.contains("authorization"), "{stderr}");
    let (ok, _, stderr) = anpctl_as(
        &stack,
        OPS_TOKEN,
        Some(&session),
        &["site", "create", "tenants/Bad Slug", "--name", "X"],
    );
    assert!(!ok && stderr.contains("slug"), "{stderr}");
    let (ok, _, stderr) = anpctl(
        &stack,
        OPS_TOKEN,
        &["site", "create", "no-slash", "--name", "X"],
    );
    assert!(!ok && stderr.contains("<network>/<site>"), "{stderr}");
    assert!(!run(&["network", "list"]).contains("other"));
    // Every ops call, refused ones too, is in the audit log.
    let audit = run(&["audit"]);
    assert!(
        audit.contains("bootstrap\tOnboardNetwork\ttenants\tok\tcreated=true plan=standard"),
        "{audit}"
    );
    assert!(
        audit.contains("unauthenticated\tOnboardNetwork\tother\tUnauthenticated"),
        "{audit}"
    );
    // After logging out, the session no longer works.
    run(&["account", "logout"]);
    let (ok, _, stderr) = anpctl_as(&stack, OPS_TOKEN, Some(&session), &["account", "whoami"]);
    assert!(!ok && stderr.contains("sign in"), "{stderr}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_offboard_a_network_and_import_it_elsewhere_with_anpctl() {
    let stack = Stack::start().await;
    stack.onboard("movers", "Movers").await;
    crate::flow::create_site(&stack, "movers", "north", "North").await;
    let post = crate::flow::publish(&stack, "movers", "north", "Packing", "Boxes", "en").await;
    eventually(Duration::from_secs(15), "the post in the feed", || async {
        (crate::flow::feed_ids(&stack, "movers", "").await == vec![post.clone()]).then_some(())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("movers.tar");
    let archive_arg = archive.to_str().unwrap();
    let offboard = |confirm: &str| {
        anpctl(
            &stack,
            OPS_TOKEN,
            &[
                "network",
                "offboard",
                "movers",
                "--archive",
                archive_arg,
                "--confirm",
                confirm,
            ],
        )
    };
    let (ok, _, stderr) = offboard("mover");
    assert!(!ok && stderr.contains("--confirm"), "{stderr}");
    let (ok, stdout, stderr) = offboard("movers");
    assert!(ok, "offboard: {stderr}");
    assert!(stdout.contains("exported movers"), "{stdout}");
    assert!(stdout.contains("content: 1 events deleted"), "{stdout}");
    assert!(stdout.contains("accounts: 1 forgotten, 0 kept"), "{stdout}");
    let (ok, _, stderr) = anpctl(&stack, OPS_TOKEN, &["network", "show", "movers"]);
    assert!(!ok && stderr.contains("movers"), "{stderr}");

    let elsewhere = Stack::start().await;
    let (ok, stdout, stderr) = anpctl(&elsewhere, OPS_TOKEN, &["network", "import", archive_arg]);
    assert!(ok, "import: {stderr}");
    assert!(stdout.starts_with("imported movers"), "{stdout}");
    assert!(stdout.contains("content: 1 events imported"), "{stdout}");
    let (ok, stdout, _) = anpctl(&elsewhere, OPS_TOKEN, &["network", "show", "movers"]);
    // It arrives as it left: suspended, until the cooperative resumes it.
    assert!(ok && stdout.contains("suspended"), "{stdout}");
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"not an archive").unwrap();
    let (ok, _, stderr) = anpctl(
        &elsewhere,
        OPS_TOKEN,
        &["network", "import", garbage.to_str().unwrap()],
    );
    assert!(!ok && stderr.contains("manifest.json"), "{stderr}");
    stack.stop().await;
    elsewhere.stop().await;
}
