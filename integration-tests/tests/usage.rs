//! Usage per network and day, and the cost share, end to end: events and
//! posts counted once from the stream, requests from the gateway, sites and
//! members from the sites service; `anpctl usage` as table and CSV.

use std::process::Command;
use std::time::Duration;

use anp_proto::content::v1::{EditPostRequest, GetPostRequest};
use anp_proto::ops::v1::{CostShareRequest, GetNetworkRequest, GetUsageRequest, UsageReport};
use anp_proto::sites::v1::Role;
use tonic::Code;

use crate::harness::{
    OPS_TOKEN, Stack, authorized, bin_dir, count, eventually, expect_error, with_token,
};
use crate::people::{accept, create_site, invite, publish_as};

async fn report(stack: &Stack, month: &str) -> UsageReport {
    stack
        .ops()
        .get_usage(authorized(GetUsageRequest {
            month: month.into(),
            network_slug: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_is_metered_per_network_and_day_and_shared_fairly() {
    let stack = Stack::start().await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    stack.onboard("big", "Big").await;
    stack.onboard("small", "Small").await;
    let big = stack.admin("big");
    create_site(&stack, &big, "big", "one", "").await.unwrap();
    create_site(&stack, &big, "big", "two", "").await.unwrap();
    for n in 0..2 {
        let token = stack.sign_up(&format!("member{n}@big.example.org")).await;
        let invitation = invite(&stack, &big, "big", "one", Role::Member, "")
            .await
            .unwrap();
        accept(&stack, &token, &invitation.token).await.unwrap();
    }
    let mut big_posts = Vec::new();
    for n in 0..3 {
        big_posts.push(
            publish_as(&stack, &big, "big", "one", &format!("Big post {n}"))
                .await
                .unwrap(),
        );
    }
    let small = stack.admin("small");
    create_site(&stack, &small, "small", "only", "")
        .await
        .unwrap();
    publish_as(&stack, &small, "small", "only", "Small post")
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            reqwest::get(stack.http("/n/big/one"))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            reqwest::get(stack.http("/n/small")).await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        reqwest::get(stack.http("/n/nowhere"))
            .await
            .unwrap()
            .status(),
        404
    );

    let expected_events = |network: &'static str| {
        let stack = &stack;
        async move {
            let sql = format!(
                "SELECT (SELECT count(*) FROM sites.events e JOIN sites.networks n ON n.id = e.network_id WHERE n.slug = '{network}') \
                      + (SELECT count(*) FROM content.events e JOIN sites.networks n ON n.id = e.network_id WHERE n.slug = '{network}')"
            );
            count(stack, &sql).await
        }
    };
    let (big_events, small_events) = (expected_events("big").await, expected_events("small").await);
    let usage = eventually(Duration::from_secs(20), "usage metered", || async {
        let usage = report(&stack, &month).await;
        let day = |slug: &str| {
            usage
                .networks
                .iter()
                .find(|n| n.network_slug == slug)
                .and_then(|n| n.days.iter().find(|d| d.day == today).cloned())
        };
        let (b, s) = (day("big")?, day("small")?);
        (b.events == big_events && s.events == small_events && b.requests == 5 && s.requests == 2)
            .then_some(usage)
    })
    .await;
    let big_usage = usage
        .networks
        .iter()
        .find(|n| n.network_slug == "big")
        .unwrap();
    let today_big = big_usage.days.iter().find(|d| d.day == today).unwrap();
    assert_eq!(
        (today_big.sites, today_big.members, today_big.posts),
        (2, 3, 3)
    );
    // Stored bytes: each post's title, Markdown and HTML, counted once.
    let sizes = |ids: Vec<String>| {
        let stack = &stack;
        async move {
            let mut total = 0i64;
            for post_id in ids {
                let post = stack
                    .content()
                    .get_post(GetPostRequest { post_id })
                    .await
                    .unwrap()
                    .into_inner();
                total +=
                    (post.title.len() + post.body_markdown.len() + post.body_html.len()) as i64;
            }
            total
        }
    };
    assert_eq!(today_big.stored_bytes, sizes(big_posts.clone()).await);
    let small_usage = usage
        .networks
        .iter()
        .find(|n| n.network_slug == "small")
        .unwrap();
    let today_small = small_usage.days.iter().find(|d| d.day == today).unwrap();
    assert_eq!(
        (today_small.sites, today_small.members, today_small.posts),
        (1, 1, 1)
    );
    assert!(
        big_usage
            .days
            .iter()
            .all(|d| d.day.as_str() <= today.as_str()),
        "no future days"
    );
    let details = stack
        .ops()
        .get_network(authorized(GetNetworkRequest { slug: "big".into() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        details.usage.unwrap().storage_bytes,
        today_big.stored_bytes,
        "network show has the stored bytes"
    );

    // An edit changes the network's stored bytes by the post's change in
    // size (not by its new size).
    stack
        .content()
        .edit_post(with_token(
            EditPostRequest {
                post_id: big_posts[0].clone(),
                title: "Big post 0, longer now".into(),
                body_markdown: "Body, and a longer one".into(),
                ..Default::default()
            },
            &big,
        ))
        .await
        .unwrap();
    let expected = sizes(big_posts.clone()).await;
    assert!(expected > today_big.stored_bytes);
    let big_events = big_events + 1;
    eventually(Duration::from_secs(20), "the edit metered", || async {
        let usage = report(&stack, &month).await;
        let day = usage
            .networks
            .iter()
            .find(|n| n.network_slug == "big")?
            .days
            .iter()
            .find(|d| d.day == today)?
            .clone();
        (day.stored_bytes == expected && day.events == big_events).then_some(())
    })
    .await;

    // The cost share adds up to the cent, and the bigger network pays more.
    let shares = stack
        .ops()
        .cost_share(authorized(CostShareRequest {
            month: month.clone(),
            total: "1800".into(),
            base_percent: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (shares.total.as_str(), shares.base_percent),
        ("1800.00", 40)
    );
    let cents = |text: &str| (text.parse::<f64>().unwrap() * 100.0).round() as i64;
    assert_eq!(
        shares.shares.iter().map(|s| cents(&s.total)).sum::<i64>(),
        180_000
    );
    let share = |slug: &str| {
        shares
            .shares
            .iter()
            .find(|s| s.network_slug == slug)
            .unwrap()
            .clone()
    };
    assert_eq!(share("big").base, "360.00");
    assert_eq!(share("small").base, "360.00");
    assert!(cents(&share("big").usage) > cents(&share("small").usage));
    assert!(shares.formula.contains("40%"));
    let equal = stack
        .ops()
        .cost_share(authorized(CostShareRequest {
            month: month.clone(),
            total: "100.01".into(),
            base_percent: 100,
        }))
        .await
        .unwrap()
        .into_inner();
    let totals: Vec<String> = equal.shares.iter().map(|s| s.total.clone()).collect();
    assert_eq!(totals, ["50.01", "50.00"]);

    // Bad input.
    let mut ops = stack.ops();
    for (month, field) in [("2026-13", "month"), ("November", "month")] {
        expect_error(
            ops.get_usage(authorized(GetUsageRequest {
                month: month.into(),
                network_slug: String::new(),
            }))
            .await,
            Code::InvalidArgument,
            field,
        );
    }
    expect_error(
        ops.get_usage(authorized(GetUsageRequest {
            month: month.clone(),
            network_slug: "nowhere".into(),
        }))
        .await,
        Code::NotFound,
        "network_slug",
    );
    for (total, percent, field) in [
        ("-5", 0, "total"),
        ("12,50", 0, "total"),
        ("100", 101, "base_percent"),
    ] {
        expect_error(
            ops.cost_share(authorized(CostShareRequest {
                month: month.clone(),
                total: total.into(),
                base_percent: percent,
            }))
            .await,
            Code::InvalidArgument,
            field,
        );
    }

    // anpctl prints the same as a table and as CSV.
    let anpctl = |args: &[&str]| {
        let output = Command::new(bin_dir().join("anpctl"))
            .args(args)
            .env("ANP_SITES_URL", format!("http://{}", stack.sites_addr))
            .env("ANP_OPS_TOKEN", OPS_TOKEN)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let table = anpctl(&["usage", "--month", &month]);
    assert!(table.starts_with("network  plan"), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("big ") && line.contains(" 3 ")),
        "{table}"
    );
    let csv = anpctl(&["usage", "--month", &month, "--csv", "--daily"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("network,day,sites,members,posts,events,stored_bytes,requests")
    );
    assert!(
        csv.lines()
            .any(|line| line.starts_with(&format!("big,{today},2,3,3,{big_events},"))),
        "{csv}"
    );
    let shared = anpctl(&[
        "usage",
        "cost-share",
        "--total",
        "1800",
        "--month",
        &month,
        "--csv",
    ]);
    assert!(shared.starts_with("network,base,usage,total,"), "{shared}");
    assert_eq!(shared.lines().count(), 3);
    stack.stop().await;
}

/// The ids of counted events are kept `KEEP_DAYS`: older ones are
/// forgotten, and an event of a forgotten day (a replay) counts nothing,
/// while a recent one still counts once however often it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_of_counted_events_are_forgotten_and_old_events_not_counted_again() {
    use anp_aggregator::events::{Delivered, Meta, Projected};
    use anp_aggregator::usage::{KEEP_DAYS, Usage, prune};
    let stack = Stack::start().await;
    let client = stack.infra.pg().await;
    client
        .batch_execute("SET search_path TO aggregator")
        .await
        .unwrap();
    let pool = anp_eventstore::connect_pool(&stack.infra.database_url, "aggregator", 2)
        .await
        .unwrap();
    let usage = Usage::new(pool);
    let network = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let event = |days_ago: i64| Delivered {
        seq: 1,
        event: Projected::Ignored,
        meta: Some(Meta {
            event_id: uuid::Uuid::now_v7(),
            network_id: network,
            event_type: "SiteUpdated".into(),
            occurred_at: now - chrono::Duration::days(days_ago),
        }),
        traceparent: String::new(),
    };
    // (The aggregator has already forgotten what is older than KEEP_DAYS.)
    let (old, recent) = (event(10), event(0));
    usage.apply(&[old.clone(), recent.clone()]).await.unwrap();
    let counted = |day: chrono::NaiveDate| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT events FROM usage_daily WHERE network_id = $1 AND day = $2",
                    &[&network, &day],
                )
                .await
                .unwrap()
                .map_or(0, |row| row.get::<_, i64>(0))
        }
    };
    let (old_day, today) = (
        old.meta.as_ref().unwrap().occurred_at.date_naive(),
        now.date_naive(),
    );
    assert_eq!((counted(old_day).await, counted(today).await), (1, 1));

    let before = today - chrono::Duration::days(5);
    assert!(before > today - chrono::Duration::days(KEEP_DAYS));
    assert_eq!(prune(&client, before).await.unwrap(), 1, "the old id");
    let ids: Vec<uuid::Uuid> = client
        .query(
            "SELECT event_id FROM usage_events WHERE network_id = $1",
            &[&network],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, vec![recent.meta.as_ref().unwrap().event_id]);
    // The mark only moves forward.
    assert_eq!(
        prune(&client, before - chrono::Duration::days(30))
            .await
            .unwrap(),
        0
    );
    let mark: chrono::NaiveDate = client
        .query_one("SELECT before FROM usage_pruned", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mark, before);

    // Both come again (a replay): neither counts twice.
    usage.apply(&[old, recent]).await.unwrap();
    assert_eq!((counted(old_day).await, counted(today).await), (1, 1));
    stack.stop().await;
}
