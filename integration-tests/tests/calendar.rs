//! The calendar: a weekly event keeps its local time across daylight
//! saving; single occurrences are cancelled and moved; calendar apps get it
//! all through iCalendar (checked with an independent parser).

use anp_proto::calendar::v1::*;
use anp_proto::sites::v1::Role;
use prost_types::Timestamp;
use tonic::Code;

use crate::flow::get_text;
use crate::harness::{Stack, count, expect_error, with_token};
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
