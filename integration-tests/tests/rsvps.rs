//! RSVPs: places up to the capacity, then a waitlist in order of arrival;
//! a withdrawal or a larger capacity moves the waitlist up; the last place
//! is given once even when many ask at the same moment; names are for the
//! hosts' editors only.

use anp_proto::calendar::v1::*;
use tonic::Code;

use crate::flow::get_text;
use std::time::Duration;

use crate::harness::{Stack, eventually, expect_error, with_token};
use crate::people::create_site;

/// A local time a month from now, so the occurrence is not over.
fn next_month() -> String {
    (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT18:00")
        .to_string()
}

fn meeting(capacity: u32) -> ScheduleEventRequest {
    ScheduleEventRequest {
        network_slug: "org".into(),
        site_slug: "hall".into(),
        title: "Know your rights".into(),
        time_zone: "America/Chicago".into(),
        start_local: next_month(),
        duration_minutes: 90,
        capacity,
        ..Default::default()
    }
}

fn answer(event_id: &str, going: bool) -> RsvpRequest {
    RsvpRequest {
        event_id: event_id.into(),
        original_local: String::new(),
        going,
    }
}

fn ask(event_id: &str) -> GetRsvpsRequest {
    GetRsvpsRequest {
        event_id: event_id.into(),
        original_local: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn places_then_a_waitlist_that_moves_up() {
    let stack = Stack::start().await;
    stack.onboard("org", "Org").await;
    let admin = stack.admin("org");
    create_site(&stack, &admin, "org", "hall", "")
        .await
        .unwrap();
    let mut calendar = stack.calendar();
    let event = calendar
        .schedule_event(with_token(meeting(2), &admin))
        .await
        .unwrap()
        .into_inner();
    let ana = stack.sign_up("ana@people.example.org").await;
    let ben = stack.sign_up("ben@people.example.org").await;
    let cruz = stack.sign_up("cruz@people.example.org").await;
    let dee = stack.sign_up("dee@people.example.org").await;

    // Nobody signed in: no answer.
    expect_error(
        calendar.rsvp(answer(&event.id, true)).await,
        Code::Unauthenticated,
        "authorization",
    );
    for token in [&ana, &ben] {
        let summary = calendar
            .rsvp(with_token(answer(&event.id, true), token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(summary.my_status, "going");
    }
    let cruz_answer = calendar
        .rsvp(with_token(answer(&event.id, true), &cruz))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cruz_answer.my_status, "waitlisted");
    assert_eq!(cruz_answer.my_waitlist_position, 1);
    let dee_answer = calendar
        .rsvp(with_token(answer(&event.id, true), &dee))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            dee_answer.going,
            dee_answer.waitlisted,
            dee_answer.my_waitlist_position
        ),
        (2, 2, 2)
    );
    // Saying it again changes nothing.
    let again = calendar
        .rsvp(with_token(answer(&event.id, true), &ben))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.going, again.waitlisted), (2, 2));

    // Everyone sees counts; only the hosts' editors see who.
    let public = calendar
        .get_rsvps(ask(&event.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (public.going, public.waitlisted, public.capacity),
        (2, 2, 2)
    );
    assert!(public.attendees.is_empty());
    let as_member = calendar
        .get_rsvps(with_token(ask(&event.id), &cruz))
        .await
        .unwrap()
        .into_inner();
    assert!(as_member.attendees.is_empty());
    assert_eq!(as_member.my_status, "waitlisted");
    let as_editor = calendar
        .get_rsvps(with_token(ask(&event.id), &admin))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<(&str, &str)> = as_editor
        .attendees
        .iter()
        .map(|a| (a.display_name.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("ana", "going"),
            ("ben", "going"),
            ("cruz", "waitlisted"),
            ("dee", "waitlisted")
        ]
    );

    // Ana withdraws: Cruz, first on the waitlist, gets her place.
    let withdrawn = calendar
        .rsvp(with_token(answer(&event.id, false), &ana))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.my_status, "");
    let cruz_now = calendar
        .get_rsvps(with_token(ask(&event.id), &cruz))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cruz_now.my_status, "going");
    let dee_now = calendar
        .get_rsvps(with_token(ask(&event.id), &dee))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (dee_now.my_status.as_str(), dee_now.my_waitlist_position),
        ("waitlisted", 1)
    );

    // A bigger room: the waitlist moves up at once.
    let mut bigger = meeting(10);
    bigger.start_local = event.start_local.clone();
    calendar
        .update_event(with_token(
            UpdateEventRequest {
                event_id: event.id.clone(),
                details: Some(bigger),
                expected_version: 0,
            },
            &admin,
        ))
        .await
        .unwrap();
    let after = calendar
        .get_rsvps(with_token(ask(&event.id), &dee))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (after.my_status.as_str(), after.going, after.waitlisted),
        ("going", 3, 0)
    );

    // Recurring events need the occurrence; cancelled events take no answers.
    let mut weekly = meeting(0);
    weekly.rrule = "FREQ=WEEKLY;COUNT=3".into();
    let weekly = calendar
        .schedule_event(with_token(weekly, &admin))
        .await
        .unwrap()
        .into_inner();
    expect_error(
        calendar
            .rsvp(with_token(answer(&weekly.id, true), &ana))
            .await,
        Code::InvalidArgument,
        "original_local",
    );
    let mut wrong = answer(&weekly.id, true);
    wrong.original_local = "2020-01-01T18:00".into();
    expect_error(
        calendar.rsvp(with_token(wrong, &ana)).await,
        Code::InvalidArgument,
        "original_local",
    );
    let mut second = answer(&weekly.id, true);
    second.original_local = (chrono::Utc::now() + chrono::Duration::days(37))
        .format("%Y-%m-%dT18:00")
        .to_string();
    let summary = calendar
        .rsvp(with_token(second, &ana))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.my_status.as_str(), summary.going), ("going", 1));
    calendar
        .cancel_event(with_token(
            CancelEventRequest {
                event_id: event.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    expect_error(
        calendar
            .rsvp(with_token(answer(&event.id, true), &ana))
            .await,
        Code::FailedPrecondition,
        "cancelled",
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_place_is_given_once() {
    let stack = Stack::start().await;
    stack.onboard("org", "Org").await;
    let admin = stack.admin("org");
    create_site(&stack, &admin, "org", "hall", "")
        .await
        .unwrap();
    let event = stack
        .calendar()
        .schedule_event(with_token(meeting(1), &admin))
        .await
        .unwrap()
        .into_inner();
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(stack.sign_up(&format!("p{i}@people.example.org")).await);
    }
    let answers = futures::future::join_all(tokens.iter().map(|token| {
        let mut calendar = stack.calendar();
        let request = with_token(answer(&event.id, true), token);
        async move { calendar.rsvp(request).await.unwrap().into_inner().my_status }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| *s == "going").count(),
        1,
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|s| *s == "waitlisted").count(), 7);
    let summary = stack
        .calendar()
        .get_rsvps(ask(&event.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.going, summary.waitlisted), (1, 7));
    stack.stop().await;
}

/// The schema.org data of an event page.
fn json_ld(html: &str) -> serde_json::Value {
    let start = html
        .find("<script type=\"application/ld+json\">")
        .expect("JSON-LD")
        + "<script type=\"application/ld+json\">".len();
    let end = start + html[start..].find("</script>").expect("end of script");
    serde_json::from_str(&html[start..end]).expect("valid JSON-LD")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_sign_in_on_the_web_and_answer_on_the_event_page() {
    let stack = Stack::start().await;
    stack.onboard("org", "Org").await;
    let admin = stack.admin("org");
    create_site(&stack, &admin, "org", "hall", "")
        .await
        .unwrap();
    // Names of the network's own pages are not site slugs.
    expect_error(
        create_site(&stack, &admin, "org", "events", "").await,
        Code::InvalidArgument,
        "reserved",
    );
    let mut request = meeting(1);
    request.title = "Rights <clinic> & more".into();
    request.location = Some(Location {
        mode: "mixed".into(),
        venue: "Library".into(),
        address: "1 Main St".into(),
        url: "https://meet.example.org/clinic".into(),
        ..Default::default()
    });
    let event = stack
        .calendar()
        .schedule_event(with_token(request, &admin))
        .await
        .unwrap()
        .into_inner();
    stack.sign_up("ana@people.example.org").await;
    let page_path = format!("/n/org/hall/events/{}", event.id);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Anyone: the page, its schema.org data, a way to sign in.
    let html = client
        .get(stack.http(&page_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = json_ld(&html);
    assert_eq!(data["@type"], "Event");
    assert_eq!(data["name"], "Rights <clinic> & more");
    assert_eq!(
        data["eventAttendanceMode"],
        "https://schema.org/MixedEventAttendanceMode"
    );
    assert_eq!(data["maximumAttendeeCapacity"], 1);
    assert!(
        data["startDate"]
            .as_str()
            .unwrap()
            .starts_with(&event.start_local[..10])
    );
    assert!(!html.contains("<clinic>"), "the title is escaped");
    assert!(html.contains("Sign in to say you are going"));
    // The month and the .ics of the event.
    let month = &event.start_local[..7];
    let (status, calendar_html) =
        get_text(&stack.http(&format!("/n/org/hall/calendar?month={month}"))).await;
    assert_eq!(status, 200);
    assert!(
        calendar_html.contains(&event.id),
        "the month links the event"
    );
    let (status, _) = get_text(&stack.http("/n/org/hall/calendar?month=soon")).await;
    assert_eq!(status, 400);
    let (_, list) = get_text(&stack.http("/n/org/events")).await;
    assert!(
        list.contains("&#x2f;n&#x2f;org&#x2f;calendar.ics"),
        "the network's .ics"
    );
    // Upcoming on the site, the network and the umbrella, with their lists.
    for path in ["/n/org/hall", "/n/org", "/", "/n/org/events", "/events"] {
        let event_id = event.id.clone();
        eventually(Duration::from_secs(10), "the event on the page", || async {
            let (status, html) = get_text(&stack.http(path)).await;
            (status == 200 && html.contains(&event_id)).then_some(())
        })
        .await;
    }
    let (status, ics) =
        get_text(&stack.http(&format!("/n/org/hall/event-ics/{}.ics", event.id))).await;
    assert_eq!(status, 200);
    assert!(ics.contains(&format!("UID:{}@anp", event.id)));

    // A wrong password, then the right one: a session cookie.
    let wrong = client
        .post(stack.http("/signin"))
        .form(&[
            ("email", "ana@people.example.org"),
            ("password", "nope"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let signed_in = client
        .post(stack.http("/signin"))
        .form(&[
            ("email", "ana@people.example.org"),
            ("password", crate::harness::PASSWORD),
            ("next", page_path.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], page_path.as_str());
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_owned();

    // A form sent from another site is refused; from ours it answers.
    let rsvp_url = stack.http(&format!("{page_path}/rsvp"));
    let answer_form = |cookie: Option<&str>, origin: Option<&str>, going: &str| {
        let mut request = client
            .post(&rsvp_url)
            .form(&[("at", event.start_local.as_str()), ("going", going)]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap() }
    };
    let forged = answer_form(Some(&session), Some("https://evil.example"), "yes").await;
    assert_eq!(forged.status(), 403);
    assert_eq!(
        answer_form(Some(&session), None, "maybe").await.status(),
        422
    );
    assert_eq!(answer_form(Some(&session), None, "yes").await.status(), 303);
    let html = client
        .get(stack.http(&page_path))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You are going."), "{html}");
    assert!(html.contains("1 going of 1 places"));
    // Without a session the answer leads to sign-in, and nothing changes.
    let anonymous = answer_form(None, None, "no").await;
    assert_eq!(anonymous.status(), 303);
    assert!(
        anonymous.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/signin?next=")
    );
    let summary = stack
        .calendar()
        .get_rsvps(ask(&event.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.going, 1);
    stack.stop().await;
}
