//! The calendar: a weekly event keeps its local time across daylight
//! saving; single occurrences are cancelled and moved; calendar apps get it
//! all through iCalendar (checked with an independent parser).

use anp_proto::calendar::v1::*;
use anp_proto::sites::v1::Role;
use prost_types::Timestamp;
use tonic::Code;

use crate::flow::get_text;
use std::time::Duration;

use crate::harness::{Stack, count, eventually, expect_error, with_token};
use crate::people::{accept, create_site, invite};

fn weekly() -> ScheduleEventRequest {
    ScheduleEventRequest {
        network_slug: "org".into(),
        site_slug: "hall".into(),
        title: "Tenants' assembly".into(),
        description_markdown: "Bring a **friend**".into(),
        time_zone: "America/New_York".into(),
        // Tuesdays 19:00 from 20 October 2026, across the end of DST (1 Nov).
        start_local: "2026-10-20T19:00".into(),
        duration_minutes: 120,
        all_day: false,
        rrule: "FREQ=WEEKLY;BYDAY=TU;COUNT=4".into(),
        location: Some(Location {
            mode: "in_person".into(),
            venue: "Union hall".into(),
            address: "1 Main St, Boston".into(),
            has_coordinates: true,
            latitude: 42.36,
            longitude: -71.06,
            url: String::new(),
        }),
        capacity: 80,
    }
}

fn at(text: &str) -> Timestamp {
    anp_kit::timestamp(chrono::DateTime::parse_from_rfc3339(text).unwrap().into())
}

async fn occurrences(stack: &Stack) -> Vec<Occurrence> {
    stack
        .calendar()
        .list_occurrences(ListOccurrencesRequest {
            network_slug: "org".into(),
            site_slug: "hall".into(),
            from: Some(at("2026-10-01T00:00:00Z")),
            to: Some(at("2026-12-01T00:00:00Z")),
        })
        .await
        .unwrap()
        .into_inner()
        .occurrences
}

fn property<'a>(properties: &'a [ical::property::Property], name: &str) -> Option<&'a str> {
    properties
        .iter()
        .find(|property| property.name == name)
        .and_then(|property| property.value.as_deref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_weekly_event_keeps_its_local_time_and_its_changes_reach_calendar_apps() {
    let stack = Stack::start().await;
    stack.onboard("org", "Org").await;
    let admin = stack.admin("org");
    create_site(&stack, &admin, "org", "hall", "")
        .await
        .unwrap();
    let member = stack.sign_up("member@org.example.org").await;
    let invitation = invite(&stack, &admin, "org", "hall", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &member, &invitation.token).await.unwrap();
    let mut calendar = stack.calendar();

    expect_error(
        calendar.schedule_event(with_token(weekly(), &member)).await,
        Code::PermissionDenied,
        "editors",
    );
    // Bad input names the field and writes nothing.
    let bad = |change: fn(&mut ScheduleEventRequest)| {
        let mut request = weekly();
        change(&mut request);
        request
    };
    for (request, field) in [
        (bad(|r| r.time_zone = "Mars/Olympus".into()), "time_zone"),
        (bad(|r| r.rrule = "FREQ=SECONDLY".into()), "rrule"),
        (bad(|r| r.rrule = "FREQ=WEEKLY;BYDAY=XX".into()), "rrule"),
        (
            bad(|r| r.start_local = "next tuesday".into()),
            "start_local",
        ),
        (bad(|r| r.duration_minutes = 0), "end"),
        (bad(|r| r.capacity = 2_000_000), "capacity"),
        (
            bad(|r| r.location.as_mut().unwrap().mode = "online".into()),
            "location.url",
        ),
        (bad(|r| r.title = " ".into()), "title"),
    ] {
        expect_error(
            calendar.schedule_event(with_token(request, &admin)).await,
            Code::InvalidArgument,
            field,
        );
    }
    assert_eq!(count(&stack, "SELECT count(*) FROM events.events").await, 0);

    let event = calendar
        .schedule_event(with_token(weekly(), &admin))
        .await
        .unwrap()
        .into_inner();
    // 19:00 local every week; the UTC time moves with daylight saving.
    let all = occurrences(&stack).await;
    let local: Vec<&str> = all.iter().map(|o| o.start_local.as_str()).collect();
    assert_eq!(
        local,
        vec![
            "2026-10-20T19:00",
            "2026-10-27T19:00",
            "2026-11-03T19:00",
            "2026-11-10T19:00"
        ]
    );
    assert_eq!(all[1].start, Some(at("2026-10-27T23:00:00Z")));
    assert_eq!(all[2].start, Some(at("2026-11-04T00:00:00Z")));

    // One occurrence cancelled, one moved, one that is not there refused.
    let occurrence = |original: &str| OccurrenceRequest {
        event_id: event.id.clone(),
        original_local: original.into(),
    };
    calendar
        .cancel_occurrence(with_token(occurrence("2026-10-27T19:00"), &admin))
        .await
        .unwrap();
    let moved = calendar
        .reschedule_occurrence(with_token(
            RescheduleOccurrenceRequest {
                event_id: event.id.clone(),
                original_local: "2026-11-03T19:00".into(),
                start_local: "2026-11-05T18:00".into(),
                duration_minutes: 60,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.sequence, 2);
    expect_error(
        calendar
            .cancel_occurrence(with_token(occurrence("2026-10-28T19:00"), &admin))
            .await,
        Code::InvalidArgument,
        "original_local",
    );
    let all = occurrences(&stack).await;
    assert!(all[1].cancelled);
    assert_eq!(all[2].start_local, "2026-11-05T18:00");
    assert_eq!(all[2].end, Some(at("2026-11-06T00:00:00Z")));

    // The site's calendar for calendar apps, read by an independent parser.
    let (status, text) = get_text(&stack.http("/n/org/hall/calendar.ics")).await;
    assert_eq!(status, 200);
    let parsed = ical::IcalParser::new(text.as_bytes())
        .next()
        .expect("a calendar")
        .expect("valid iCalendar");
    assert_eq!(
        property(&parsed.timezones[0].properties, "TZID"),
        Some("America/New_York")
    );
    assert_eq!(parsed.events.len(), 3, "the series and two exceptions");
    let master = &parsed.events[0];
    assert_eq!(
        property(&master.properties, "RRULE"),
        Some("FREQ=WEEKLY;BYDAY=TU;COUNT=4")
    );
    assert_eq!(property(&master.properties, "SEQUENCE"), Some("2"));
    assert_eq!(
        property(&master.properties, "GEO"),
        Some("42.360000;-71.060000")
    );
    let cancelled = parsed
        .events
        .iter()
        .find(|e| property(&e.properties, "RECURRENCE-ID") == Some("20261027T190000"))
        .expect("the cancelled occurrence");
    assert_eq!(property(&cancelled.properties, "STATUS"), Some("CANCELLED"));

    // The whole event cancelled: calendar apps are told.
    calendar
        .cancel_event(with_token(
            CancelEventRequest {
                event_id: event.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let (_, text) = get_text(&stack.http("/n/org/hall/calendar.ics")).await;
    let parsed = ical::IcalParser::new(text.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        property(&parsed.events[0].properties, "STATUS"),
        Some("CANCELLED")
    );
    assert!(occurrences(&stack).await.iter().all(|o| o.cancelled));
    expect_error(
        calendar
            .cancel_occurrence(with_token(occurrence("2026-11-10T19:00"), &admin))
            .await,
        Code::FailedPrecondition,
        "cancelled",
    );
    stack.stop().await;
}

/// The UIDs in an iCalendar text, read by the independent parser.
fn uids(text: &str) -> Vec<String> {
    let parsed = ical::IcalParser::new(text.as_bytes())
        .next()
        .expect("a calendar")
        .expect("valid iCalendar");
    parsed
        .events
        .iter()
        .filter(|e| property(&e.properties, "RECURRENCE-ID").is_none())
        .filter_map(|e| property(&e.properties, "UID").map(str::to_owned))
        .collect()
}

async fn titles_of(stack: &Stack, network: &str, site: &str) -> Vec<String> {
    let occurrences = stack
        .calendar()
        .list_occurrences(ListOccurrencesRequest {
            network_slug: network.into(),
            site_slug: site.into(),
            from: Some(at("2026-10-01T00:00:00Z")),
            to: Some(at("2027-09-01T00:00:00Z")),
        })
        .await
        .unwrap()
        .into_inner()
        .occurrences;
    let mut titles: Vec<String> = occurrences.into_iter().map(|o| o.title).collect();
    titles.dedup();
    titles
}

const IMPORTED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other app//EN\r\n\
BEGIN:VEVENT\r\nUID:vigil@other.example\r\nDTSTAMP:20261101T000000Z\r\n\
DTSTART;TZID=Europe/Madrid:20270105T190000\r\nDTEND;TZID=Europe/Madrid:20270105T200000\r\n\
RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Europe/Madrid:20270112T190000\r\n\
SUMMARY:Vigil\r\nLOCATION:Plaza Mayor\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:fair@other.example\r\nDTSTAMP:20261101T000000Z\r\n\
DTSTART;VALUE=DATE:20270301\r\nSUMMARY:Book fair\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

/// A stack with networks `org` (site `hall`) and `ally` (site `club`), and
/// their admins' tokens.
async fn two_networks() -> (Stack, String, String) {
    let stack = Stack::start().await;
    stack.onboard("org", "Org").await;
    stack.onboard("ally", "Ally").await;
    let admin = stack.admin("org");
    let ally = stack.admin("ally");
    create_site(&stack, &admin, "org", "hall", "")
        .await
        .unwrap();
    create_site(&stack, &ally, "ally", "club", "")
        .await
        .unwrap();
    (stack, admin, ally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_edited_cohosted_across_networks_and_imported() {
    let (stack, admin, ally) = two_networks().await;
    let member = stack.sign_up("member@org.example.org").await;
    let invitation = invite(&stack, &admin, "org", "hall", Role::Member, "")
        .await
        .unwrap();
    accept(&stack, &member, &invitation.token).await.unwrap();
    let mut calendar = stack.calendar();
    let event = calendar
        .schedule_event(with_token(weekly(), &admin))
        .await
        .unwrap()
        .into_inner();

    // Editing: new details and a new sequence; moved occurrences that are
    // still in the series stay.
    calendar
        .reschedule_occurrence(with_token(
            RescheduleOccurrenceRequest {
                event_id: event.id.clone(),
                original_local: "2026-10-27T19:00".into(),
                start_local: "2026-10-28T19:00".into(),
                duration_minutes: 0,
            },
            &admin,
        ))
        .await
        .unwrap();
    let update = |details: ScheduleEventRequest, expected_version| UpdateEventRequest {
        event_id: event.id.clone(),
        details: Some(details),
        expected_version,
    };
    let mut renamed = weekly();
    renamed.title = "Tenants' assembly (all welcome)".into();
    renamed.rrule = "FREQ=WEEKLY;BYDAY=TU;COUNT=6".into();
    expect_error(
        calendar
            .update_event(with_token(update(renamed.clone(), 0), &member))
            .await,
        Code::PermissionDenied,
        "editors",
    );
    expect_error(
        calendar
            .update_event(with_token(update(renamed.clone(), 1), &admin))
            .await,
        Code::Aborted,
        "version",
    );
    let mut untitled = renamed.clone();
    untitled.title = String::new();
    expect_error(
        calendar
            .update_event(with_token(update(untitled, 0), &admin))
            .await,
        Code::InvalidArgument,
        "title",
    );
    let updated = calendar
        .update_event(with_token(update(renamed, 2), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.sequence, 2);
    assert_eq!(updated.changes.len(), 1, "the moved occurrence stays");
    assert_eq!(
        titles_of(&stack, "org", "hall").await,
        ["Tenants' assembly (all welcome)"]
    );

    // Co-hosting with a site of another network, with its editors' consent.
    let cohost = |network: &str, site: &str| CohostRequest {
        event_id: event.id.clone(),
        network_slug: network.into(),
        site_slug: site.into(),
    };
    expect_error(
        calendar
            .invite_cohost(with_token(cohost("ally", "club"), &member))
            .await,
        Code::PermissionDenied,
        "editors",
    );
    expect_error(
        calendar
            .invite_cohost(with_token(cohost("ally", "nowhere"), &admin))
            .await,
        Code::NotFound,
        "",
    );
    expect_error(
        calendar
            .invite_cohost(with_token(cohost("org", "hall"), &admin))
            .await,
        Code::InvalidArgument,
        "site_slug",
    );
    let invited = calendar
        .invite_cohost(with_token(cohost("ally", "club"), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(invited.hosts[0].status, "invited");
    assert!(
        titles_of(&stack, "ally", "club").await.is_empty(),
        "not before it accepts"
    );
    let decide = |accept: bool| DecideCohostRequest {
        event_id: event.id.clone(),
        network_slug: "ally".into(),
        site_slug: "club".into(),
        accept,
    };
    // The inviting side cannot accept for the invited site.
    expect_error(
        calendar
            .decide_cohost(with_token(decide(true), &admin))
            .await,
        Code::PermissionDenied,
        "",
    );
    let accepted = calendar
        .decide_cohost(with_token(decide(true), &ally))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.hosts[0].status, "accepted");
    expect_error(
        calendar
            .decide_cohost(with_token(decide(true), &ally))
            .await,
        Code::FailedPrecondition,
        "invitation",
    );
    assert_eq!(
        titles_of(&stack, "ally", "club").await,
        ["Tenants' assembly (all welcome)"]
    );
    // One source: the co-host's calendar, its network's and the umbrella's
    // have the event once, with its one UID.
    let uid = format!("{}@anp", event.id);
    for path in [
        "/n/ally/club/calendar.ics",
        "/n/ally/calendar.ics",
        "/n/org/calendar.ics",
        "/calendar.ics",
    ] {
        let (status, text) = get_text(&stack.http(path)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(uids(&text), vec![uid.as_str()], "{path}");
    }
    // The co-host leaves; the event is the origin's again only.
    calendar
        .remove_cohost(with_token(cohost("ally", "club"), &ally))
        .await
        .unwrap();
    assert!(titles_of(&stack, "ally", "club").await.is_empty());
    let (_, text) = get_text(&stack.http("/n/ally/calendar.ics")).await;
    assert!(uids(&text).is_empty());

    // Importing a calendar: by text, then again (nothing twice), then a
    // changed file (updated in place), then from a URL.
    let import = |text: &str, url: &str| ImportIcsRequest {
        network_slug: "ally".into(),
        site_slug: "club".into(),
        text: text.into(),
        url: url.into(),
        default_time_zone: "Europe/Madrid".into(),
    };
    expect_error(
        calendar
            .import_ics(with_token(import(IMPORTED, ""), &member))
            .await,
        Code::PermissionDenied,
        "",
    );
    for (request, field) in [
        (import("", ""), "text"),
        (import(IMPORTED, "http://example.org/x.ics"), "text"),
        (import("hello", ""), "text"),
        (
            ImportIcsRequest {
                default_time_zone: "Nowhere/Else".into(),
                ..import(IMPORTED, "")
            },
            "default_time_zone",
        ),
        (import(&"x".repeat(1024 * 1024 + 1), ""), "text"),
    ] {
        expect_error(
            calendar.import_ics(with_token(request, &ally)).await,
            Code::InvalidArgument,
            field,
        );
    }
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM events.calendar_events WHERE source_uid IS NOT NULL"
        )
        .await,
        0,
        "bad imports change nothing"
    );
    let first = calendar
        .import_ics(with_token(import(IMPORTED, ""), &ally))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.created, first.updated, first.unchanged), (2, 0, 0));
    let again = calendar
        .import_ics(with_token(import(IMPORTED, ""), &ally))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
    let changed = IMPORTED.replace("SUMMARY:Vigil", "SUMMARY:Vigil for peace");
    let third = calendar
        .import_ics(with_token(import(&changed, ""), &ally))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((third.created, third.updated, third.unchanged), (0, 1, 1));
    let vigil = calendar
        .get_event(GetEventRequest {
            event_id: third.event_ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vigil.title, "Vigil for peace");
    assert_eq!(vigil.source_uid, "vigil@other.example");
    assert_eq!(vigil.sequence, 1);
    assert_eq!(vigil.time_zone, "Europe/Madrid");
    assert!(
        vigil
            .changes
            .iter()
            .any(|c| c.cancelled && c.original_local == "2027-01-12T19:00")
    );
    assert_eq!(
        titles_of(&stack, "ally", "club").await,
        ["Vigil for peace", "Book fair"]
    );

    // From a URL (a fixture server on loopback; the test stack allows it).
    let app = axum::Router::new().route(
        "/cal.ics",
        axum::routing::get(|| async {
            IMPORTED.replace("fair@other.example", "fair-2@other.example")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let fetched = calendar
        .import_ics(with_token(
            import("", &format!("http://{addr}/cal.ics")),
            &ally,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (fetched.created, fetched.updated, fetched.unchanged),
        (1, 1, 0)
    );
    expect_error(
        calendar
            .import_ics(with_token(
                import("", &format!("http://{addr}/missing.ics")),
                &ally,
            ))
            .await,
        Code::InvalidArgument,
        "url",
    );
    stack.stop().await;
}

/// Upcoming occurrences of a timeline, as the aggregator serves them.
async fn upcoming(stack: &Stack, network: &str, site: &str) -> Vec<String> {
    stack
        .aggregator()
        .upcoming(anp_proto::aggregator::v1::UpcomingRequest {
            scope: Some(anp_proto::aggregator::v1::FeedScope {
                network_slug: network.into(),
                site_slug: site.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .occurrences
        .into_iter()
        .map(|o| o.original_local)
        .collect()
}

async fn event_hits(stack: &Stack, from: Option<Timestamp>, to: Option<Timestamp>) -> Vec<String> {
    stack
        .aggregator()
        .search(anp_proto::aggregator::v1::SearchRequest {
            query: "assembly".into(),
            kind: "event".into(),
            from,
            to,
            limit: 50,
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
async fn upcoming_occurrences_reach_every_hosts_feed_and_search_by_date() {
    let (stack, admin, ally) = two_networks().await;
    let mut calendar = stack.calendar();
    // Weekly from a week ahead, so every occurrence is upcoming.
    let first = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
    let local = |week: i64| {
        (first + chrono::Duration::weeks(week))
            .and_hms_opt(19, 0, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let mut request = weekly();
    request.start_local = local(0);
    request.rrule = "FREQ=WEEKLY;COUNT=4".into();
    let event = calendar
        .schedule_event(with_token(request, &admin))
        .await
        .unwrap()
        .into_inner();
    let all: Vec<String> = (0..4).map(local).collect();
    for (network, site) in [("", ""), ("org", ""), ("org", "hall")] {
        let expected = all.clone();
        eventually(Duration::from_secs(10), "upcoming occurrences", || async {
            (upcoming(&stack, network, site).await == expected).then_some(())
        })
        .await;
    }
    // A co-host's timelines get it too, from the same source.
    calendar
        .invite_cohost(with_token(
            CohostRequest {
                event_id: event.id.clone(),
                network_slug: "ally".into(),
                site_slug: "club".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    calendar
        .decide_cohost(with_token(
            DecideCohostRequest {
                event_id: event.id.clone(),
                network_slug: "ally".into(),
                site_slug: "club".into(),
                accept: true,
            },
            &ally,
        ))
        .await
        .unwrap();
    for (network, site) in [("ally", ""), ("ally", "club")] {
        let expected = all.clone();
        eventually(Duration::from_secs(10), "co-hosted occurrences", || async {
            (upcoming(&stack, network, site).await == expected).then_some(())
        })
        .await;
    }
    // The same timelines as Atom and JSON Feed: an entry an occurrence,
    // soonest first, each linking to its occurrence's page.
    let pages: Vec<String> = all
        .iter()
        .map(|at| format!("/n/org/hall/events/{}?at={at}", event.id))
        .collect();
    for path in ["/events", "/n/org/events", "/n/ally/events"] {
        let (status, xml) = get_text(&stack.http(&format!("{path}/feed.atom"))).await;
        assert_eq!(status, 200, "{path}");
        let feed = <atom_syndication::Feed as std::str::FromStr>::from_str(&xml).expect("Atom");
        let links: Vec<&str> = feed
            .entries()
            .iter()
            .map(|entry| entry.links()[0].href())
            .collect();
        assert_eq!(links.len(), pages.len(), "{path}");
        for (link, page) in links.iter().zip(&pages) {
            assert!(
                link.ends_with(page.as_str()),
                "{path}: {link} is not {page}"
            );
        }
        let mut ids: Vec<&str> = feed.entries().iter().map(|entry| entry.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), pages.len(), "{path}: an id an occurrence");
        let (status, json) = get_text(&stack.http(&format!("{path}/feed.json"))).await;
        assert_eq!(status, 200, "{path}");
        let json: serde_json::Value = serde_json::from_str(&json).expect("JSON Feed");
        assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
        let urls: Vec<&str> = json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|item| item["url"].as_str())
            .collect();
        assert_eq!(urls, links, "{path}");
    }

    // A cancelled occurrence leaves feeds and search.
    calendar
        .cancel_occurrence(with_token(
            OccurrenceRequest {
                event_id: event.id.clone(),
                original_local: all[1].clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let left: Vec<String> = [0, 2, 3].iter().map(|i| all[*i].clone()).collect();
    for (network, site) in [("", ""), ("ally", "club"), ("org", "hall")] {
        let expected = left.clone();
        eventually(
            Duration::from_secs(10),
            "the cancelled occurrence gone",
            || async { (upcoming(&stack, network, site).await == expected).then_some(()) },
        )
        .await;
    }
    // Search commits after the feeds.
    eventually(
        Duration::from_secs(10),
        "three occurrences in search",
        || async { (event_hits(&stack, None, None).await.len() == 3).then_some(()) },
    )
    .await;
    // Searchable by date range: the day of the third occurrence only.
    let day = first + chrono::Duration::weeks(2);
    let from = anp_kit::timestamp(day.and_hms_opt(0, 0, 0).unwrap().and_utc());
    let to = anp_kit::timestamp(
        (day + chrono::Duration::days(2))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
    );
    assert_eq!(
        event_hits(&stack, Some(from), Some(to)).await,
        [format!("{}@{}", event.id, all[2])]
    );
    // The same on the search page, and its bad filters named.
    let (status, html) = get_text(&stack.http(&format!(
        "/search?q=assembly&kind=event&from={day}&to={}",
        day + chrono::Duration::days(1)
    )))
    .await;
    assert_eq!(status, 200);
    assert_eq!(html.matches(&event.id).count(), 1, "one occurrence found");
    for (query, field) in [("kind=poem", "kind"), ("from=tomorrow", "from")] {
        let (status, html) = get_text(&stack.http(&format!("/search?q=assembly&{query}"))).await;
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(field), "{query}: {html}");
    }

    // The whole event cancelled: gone from every timeline and from search.
    calendar
        .cancel_event(with_token(
            CancelEventRequest {
                event_id: event.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    for (network, site) in [("", ""), ("ally", "club")] {
        eventually(
            Duration::from_secs(10),
            "a cancelled event gone",
            || async {
                upcoming(&stack, network, site)
                    .await
                    .is_empty()
                    .then_some(())
            },
        )
        .await;
    }
    eventually(
        Duration::from_secs(10),
        "no occurrence in search",
        || async {
            event_hits(&stack, None, None)
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    stack.stop().await;
}

/// A weekly event without an end stays in the upcoming timelines however
/// long nobody edits it: as time passes its occurrences are projected again
/// a year ahead from the state the aggregator keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_series_without_an_end_keeps_upcoming_occurrences_as_time_passes() {
    let (stack, admin, _) = two_networks().await;
    let first = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
    let mut request = weekly();
    request.start_local = format!("{first}T19:00");
    request.rrule = "FREQ=WEEKLY".into();
    let event = stack
        .calendar()
        .schedule_event(with_token(request, &admin))
        .await
        .unwrap()
        .into_inner();
    eventually(Duration::from_secs(10), "the series upcoming", || async {
        (!upcoming(&stack, "org", "hall").await.is_empty()).then_some(())
    })
    .await;
    let reach = |sql: &'static str| {
        let stack = &stack;
        let event_id = event.id.clone();
        async move {
            stack
                .infra
                .pg()
                .await
                .query_one(sql, &[&event_id])
                .await
                .expect(sql)
                .get::<_, chrono::DateTime<chrono::Utc>>(0)
        }
    };
    let last = "SELECT max(starts_at) FROM aggregator.event_occurrences \
                WHERE event_id = $1::text::uuid";
    let soonest = "SELECT min(starts_at) FROM aggregator.event_occurrences \
                   WHERE event_id = $1::text::uuid";
    let now = chrono::Utc::now();
    assert!(reach(last).await < now + chrono::Duration::days(367));

    // Nothing is due while its occurrences reach far enough.
    let mut client = stack.infra.pg().await;
    client
        .batch_execute("SET search_path TO aggregator")
        .await
        .unwrap();
    let extended = anp_aggregator::upcoming::extend_horizons(&mut client, now, 100)
        .await
        .unwrap();
    assert_eq!(extended, 0);
    // Ten months on, it is projected again a year ahead of then, once.
    let later = now + chrono::Duration::days(300);
    let extended = anp_aggregator::upcoming::extend_horizons(&mut client, later, 100)
        .await
        .unwrap();
    assert_eq!(extended, 1);
    assert!(reach(last).await > later + chrono::Duration::days(358));
    assert!(reach(soonest).await >= later - chrono::Duration::days(1));
    let again = anp_aggregator::upcoming::extend_horizons(&mut client, later, 100)
        .await
        .unwrap();
    assert_eq!(again, 0);
    // It is due in the search index too, with its kept state, until the
    // index says it has it.
    let (due, states) = anp_aggregator::upcoming::due_for_index(&client, 100)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].to_string(), event.id);
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0.event_id, event.id);
    assert_eq!(states[0].0.rrule, "FREQ=WEEKLY");
    anp_aggregator::upcoming::indexed(&client, &due)
        .await
        .unwrap();
    let (due, _) = anp_aggregator::upcoming::due_for_index(&client, 100)
        .await
        .unwrap();
    assert!(due.is_empty());

    // An event last changed before its state was kept (migration V12) gets
    // it from a replay of the event stores into the feeds.
    let kept = "SELECT state IS NOT NULL AND horizon IS NOT NULL FROM calendar_versions \
                WHERE event_id = $1::text::uuid";
    client
        .execute(
            "UPDATE calendar_versions SET state = NULL, horizon = NULL \
             WHERE event_id = $1::text::uuid",
            &[&event.id],
        )
        .await
        .unwrap();
    let row = client.query_one(kept, &[&event.id]).await.unwrap();
    assert!(!row.get::<_, bool>(0));
    stack
        .ops()
        .reindex(crate::harness::authorized(
            anp_proto::aggregator::v1::ReindexRequest {
                scope: "feeds".into(),
            },
        ))
        .await
        .unwrap();
    let row = client.query_one(kept, &[&event.id]).await.unwrap();
    assert!(row.get::<_, bool>(0), "the replay kept the state");
    assert!(reach(last).await > now + chrono::Duration::days(358));
    stack.stop().await;
}
