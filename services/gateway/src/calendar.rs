//! Calendar pages: iCalendar for calendar apps (an event, a site, a network,
//! the umbrella), month and list views, and event pages with schema.org
//! data and RSVP for signed-in people.

use crate::i18n::Arg;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::collections::HashMap;

use anp_proto::aggregator::v1::{FeedEntry, FeedScope, UpcomingOccurrence, UpcomingRequest};
use anp_proto::calendar::v1::{
    CalendarEvent, ExportIcsRequest, GetEventRequest, GetRsvpsRequest, ListOccurrencesRequest,
    Occurrence, RsvpRequest,
};

use crate::views::{FeedFormat, feed_response, render, require_slug};

/// Occurrences in an Atom or JSON Feed document (a page of it).
const EVENTS_IN_A_FEED: u32 = 50;
use crate::{AppState, PageError};

fn ics_response(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/calendar; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn export(state: &AppState, request: ExportIcsRequest) -> Result<Response, PageError> {
    let ics = state
        .calendar
        .clone()
        .export_ics(request)
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    Ok(ics_response(ics.text))
}

/// A site's calendar (its own and co-hosted events).
pub async fn site_ics(
    State(state): State<AppState>,
    Path((network_slug, site_slug)): Path<(String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    export(
        &state,
        ExportIcsRequest {
            event_id: String::new(),
            network_slug,
            site_slug,
        },
    )
    .await
}

/// Every event of a network's sites.
pub async fn network_ics(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    export(
        &state,
        ExportIcsRequest {
            network_slug,
            ..Default::default()
        },
    )
    .await
}

/// Every network's events.
pub async fn umbrella_ics(State(state): State<AppState>) -> Result<Response, PageError> {
    export(&state, ExportIcsRequest::default()).await
}

/// The session cookie the gateway sets at sign-in.
pub const SESSION_COOKIE: &str = "anp_session";

/// The session token in the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    crate::i18n::cookie(headers, SESSION_COOKIE)
        .filter(|value| !value.is_empty() && value.len() < 4096)
        .map(str::to_owned)
}

pub(crate) fn bearer<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = token.and_then(|token| format!("Bearer {token}").parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A form posted from another site is refused (the cookie is also
/// SameSite=Strict).
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ours = origin == state.public_url
                || origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host);
            if ours {
                Ok(())
            } else {
                Err(PageError::new(
                    StatusCode::FORBIDDEN,
                    crate::i18n::here("error-other-site"),
                ))
            }
        }
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn signin_form(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    render(
        &state,
        "signin.html",
        context! {
            title => crate::i18n::here("sign-in"),
            umbrella_name => state.umbrella_name.clone(),
            next => crate::local_path(query.next.as_deref()),
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let next = crate::local_path(form.next.as_deref());
    let grant = match state
        .sites
        .clone()
        .sign_in(anp_proto::sites::v1::SignInRequest {
            email: form.email.clone(),
            password: form.password,
        })
        .await
    {
        Ok(grant) => grant.into_inner(),
        Err(status)
            if status.code() == tonic::Code::Unauthenticated
                || status.code() == tonic::Code::InvalidArgument =>
        {
            let mut page = render(
                &state,
                "signin.html",
                context! {
                    title => crate::i18n::here("sign-in"),
                    umbrella_name => state.umbrella_name.clone(),
                    next => next,
                    email => form.email,
                    error => crate::i18n::here("sign-in-failed"),
                },
            )?;
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(page);
        }
        Err(status) => return Err(PageError::from_status(status)),
    };
    let max_age = grant
        .expires_at
        .map(|at| (at.seconds - chrono::Utc::now().timestamp()).max(0))
        .unwrap_or(3600);
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        grant.token
    );
    Ok((
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
    )
        .into_response())
}

pub async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    if let Some(token) = session_token(&headers) {
        let _ = state
            .sites
            .clone()
            .sign_out(bearer(
                anp_proto::sites::v1::SignOutRequest {},
                Some(&token),
            ))
            .await;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
            (header::LOCATION, "/".to_owned()),
        ],
    )
        .into_response())
}

#[derive(Serialize)]
struct OccurrenceView {
    event_id: String,
    href: String,
    title: String,
    original_local: String,
    day: String,
    time: String,
    time_zone: String,
    all_day: bool,
    cancelled: bool,
}

fn occurrence_view(network: &str, site: &str, occurrence: &Occurrence) -> OccurrenceView {
    let (day, time) = occurrence
        .start_local
        .split_once('T')
        .unwrap_or((occurrence.start_local.as_str(), ""));
    OccurrenceView {
        event_id: occurrence.event_id.clone(),
        href: format!(
            "/n/{network}/{site}/events/{}?at={}",
            occurrence.event_id, occurrence.original_local
        ),
        title: occurrence.title.clone(),
        original_local: occurrence.original_local.clone(),
        day: day.to_owned(),
        time: if occurrence.all_day {
            String::new()
        } else {
            time.to_owned()
        },
        time_zone: occurrence.time_zone.clone(),
        all_day: occurrence.all_day,
        cancelled: occurrence.cancelled,
    }
}

#[derive(Deserialize)]
pub struct MonthQuery {
    /// YYYY-MM; empty: this month.
    month: Option<String>,
}

#[derive(Serialize)]
struct DayCell {
    day: u32,
    date: String,
    in_month: bool,
    occurrences: Vec<OccurrenceView>,
}

/// A site's calendar: a month grid (Monday first) and the same month as a
/// list, with links to the months around it and to the `.ics`.
pub async fn site_calendar(
    State(state): State<AppState>,
    Path((network_slug, site_slug)): Path<(String, String)>,
    Query(query): Query<MonthQuery>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    let today = chrono::Utc::now().date_naive();
    let first = match query.month.as_deref().filter(|m| !m.is_empty()) {
        None => today.with_day(1).unwrap_or(today),
        Some(month) => chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| {
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!("month: {month:?} is not YYYY-MM"),
                )
            })?,
    };
    let next_month = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let previous_month = first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first);
    // A day either side covers every time zone's local days.
    let from = (first - chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let to = (next_month + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let occurrences = state
        .calendar
        .clone()
        .list_occurrences(ListOccurrencesRequest {
            network_slug: network_slug.clone(),
            site_slug: site_slug.clone(),
            from: Some(anp_kit::timestamp(from)),
            to: Some(anp_kit::timestamp(to)),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .occurrences;
    let month_text = first.format("%Y-%m").to_string();
    let views: Vec<OccurrenceView> = occurrences
        .iter()
        .map(|occurrence| occurrence_view(&network_slug, &site_slug, occurrence))
        .filter(|view| view.day.starts_with(&month_text))
        .collect();
    let grid_start =
        first - chrono::Duration::days(i64::from(first.weekday().num_days_from_monday()));
    let mut weeks: Vec<Vec<DayCell>> = Vec::new();
    let mut day = grid_start;
    while day < next_month || weeks.last().is_some_and(|week| week.len() < 7) {
        if weeks.last().is_none_or(|week| week.len() == 7) {
            weeks.push(Vec::with_capacity(7));
        }
        let date = day.format("%Y-%m-%d").to_string();
        let cell = DayCell {
            day: day.day(),
            in_month: day.month() == first.month(),
            occurrences: views
                .iter()
                .filter(|view| view.day == date)
                .map(|view| OccurrenceView {
                    event_id: view.event_id.clone(),
                    href: view.href.clone(),
                    title: view.title.clone(),
                    original_local: view.original_local.clone(),
                    day: view.day.clone(),
                    time: view.time.clone(),
                    time_zone: view.time_zone.clone(),
                    all_day: view.all_day,
                    cancelled: view.cancelled,
                })
                .collect(),
            date,
        };
        if let Some(week) = weeks.last_mut() {
            week.push(cell);
        }
        day += chrono::Duration::days(1);
    }
    let base = format!("/n/{network_slug}/{site_slug}");
    let lang = crate::i18n::current();
    render(
        &state,
        "calendar.html",
        context! {
            title => crate::i18n::text_with(
                lang,
                "calendar-title",
                &[("month", Arg::Text(&month_text)), ("site", Arg::Text(&site_slug))],
            ),
            umbrella_name => state.umbrella_name.clone(),
            site_href => base.clone(),
            site_slug => site_slug.clone(),
            month => crate::i18n::text_with(
                lang,
                "calendar-month",
                &[
                    ("month", Arg::Text(&crate::i18n::text(lang, &format!("month-{}", first.month())))),
                    ("year", Arg::Text(&first.year().to_string())),
                ],
            ),
            previous_href => format!("{base}/calendar?month={}", previous_month.format("%Y-%m")),
            next_href => format!("{base}/calendar?month={}", next_month.format("%Y-%m")),
            ics_href => format!("{base}/calendar.ics"),
            weeks => weeks,
            occurrences => views,
        },
    )
}

#[derive(Deserialize)]
pub struct EventQuery {
    /// The occurrence (its original local start); empty: the next one.
    at: Option<String>,
}

/// schema.org Event data for search engines and apps (JSON-LD), with `<`
/// escaped so it cannot close the script element.
fn event_json_ld(event: &CalendarEvent, occurrence: Option<&Occurrence>, url: &str) -> String {
    let location = event.location.clone().unwrap_or_default();
    let place = json!({
        "@type": "Place",
        "name": location.venue,
        "address": location.address,
        "geo": location.has_coordinates.then(|| json!({
            "@type": "GeoCoordinates",
            "latitude": location.latitude,
            "longitude": location.longitude,
        })),
    });
    let virtual_location = json!({ "@type": "VirtualLocation", "url": location.url });
    let (mode, place) = match location.mode.as_str() {
        "online" => ("OnlineEventAttendanceMode", virtual_location),
        "mixed" => ("MixedEventAttendanceMode", json!([place, virtual_location])),
        _ => ("OfflineEventAttendanceMode", place),
    };
    // In the event's own zone, with its offset, as people read it.
    let tz: chrono_tz::Tz = event.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let rfc3339 = |at: Option<&prost_types::Timestamp>| {
        anp_kit::from_timestamp(at).with_timezone(&tz).to_rfc3339()
    };
    let data = json!({
        "@context": "https://schema.org",
        "@type": "Event",
        "name": event.title,
        "description": event.description_markdown,
        "url": url,
        "startDate": occurrence.map(|o| rfc3339(o.start.as_ref())),
        "endDate": occurrence.map(|o| rfc3339(o.end.as_ref())),
        "eventStatus": if event.status == "cancelled" || occurrence.is_some_and(|o| o.cancelled) {
            "https://schema.org/EventCancelled"
        } else {
            "https://schema.org/EventScheduled"
        },
        "eventAttendanceMode": format!("https://schema.org/{mode}"),
        "location": place,
        "maximumAttendeeCapacity": (event.capacity > 0).then_some(event.capacity),
        "organizer": { "@type": "Organization", "name": event.site_slug },
    });
    data.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// An event's page: details, its next occurrences, schema.org data, and
/// the RSVP of the signed-in visitor.
pub async fn event_page(
    State(state): State<AppState>,
    Path((network_slug, site_slug, event_id)): Path<(String, String, String)>,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    if uuid::Uuid::parse_str(&event_id).is_err() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            crate::i18n::here("error-no-event"),
        ));
    }
    let event = state
        .calendar
        .clone()
        .get_event(GetEventRequest {
            event_id: event_id.clone(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    // Shown under its own site or a co-host's.
    let hosted_here = (event.network_slug == network_slug && event.site_slug == site_slug)
        || event.hosts.iter().any(|host| {
            host.status == "accepted"
                && host.network_slug == network_slug
                && host.site_slug == site_slug
        });
    if !hosted_here {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            crate::i18n::here("error-no-event-here"),
        ));
    }
    let now = chrono::Utc::now();
    let occurrences: Vec<Occurrence> = state
        .calendar
        .clone()
        .list_occurrences(ListOccurrencesRequest {
            network_slug: network_slug.clone(),
            site_slug: site_slug.clone(),
            from: Some(anp_kit::timestamp(now - chrono::Duration::days(1))),
            to: Some(anp_kit::timestamp(now + chrono::Duration::days(180))),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .occurrences
        .into_iter()
        .filter(|occurrence| occurrence.event_id == event.id)
        .collect();
    let chosen = match query.at.as_deref().filter(|at| !at.is_empty()) {
        Some(at) => occurrences.iter().find(|o| o.original_local == at),
        None => occurrences.iter().find(|o| !o.cancelled),
    };
    let token = session_token(&headers);
    let rsvps = match chosen {
        Some(occurrence) if !occurrence.cancelled && event.status != "cancelled" => state
            .calendar
            .clone()
            .get_rsvps(bearer(
                GetRsvpsRequest {
                    event_id: event.id.clone(),
                    original_local: occurrence.original_local.clone(),
                },
                token.as_deref(),
            ))
            .await
            .ok()
            .map(|response| response.into_inner()),
        _ => None,
    };
    let path = format!("/n/{network_slug}/{site_slug}/events/{}", event.id);
    let url = format!(
        "{}{path}{}",
        state.public_url,
        chosen.map_or(String::new(), |o| format!("?at={}", o.original_local))
    );
    let location = event.location.clone().unwrap_or_default();
    render(
        &state,
        "event.html",
        context! {
            title => event.title.clone(),
            umbrella_name => state.umbrella_name.clone(),
            json_ld => event_json_ld(&event, chosen, &url),
            event => context! {
                title => event.title.clone(),
                description_html => event.description_html.clone(),
                cancelled => event.status == "cancelled",
                time_zone => event.time_zone.clone(),
                capacity => event.capacity,
                site_href => format!("/n/{}/{}", event.network_slug, event.site_slug),
                site_slug => event.site_slug.clone(),
                hosts => event.hosts.iter().filter(|h| h.status == "accepted")
                    .map(|h| format!("{}/{}", h.network_slug, h.site_slug)).collect::<Vec<_>>(),
                venue => location.venue,
                address => location.address,
                online_url => location.url,
                mode => location.mode,
                ics_href => format!("/n/{network_slug}/{site_slug}/event-ics/{}.ics", event.id),
            },
            chosen => chosen.map(|o| occurrence_view(&network_slug, &site_slug, o)),
            occurrences => occurrences.iter().map(|o| occurrence_view(&network_slug, &site_slug, o)).collect::<Vec<_>>(),
            rsvps => rsvps.map(|r| context! {
                going => r.going,
                waitlisted => r.waitlisted,
                capacity => r.capacity,
                my_status => r.my_status,
                my_position => r.my_waitlist_position,
            }),
            signed_in => token.is_some(),
            rsvp_action => format!("{path}/rsvp"),
            signin_href => format!("/signin?next={}", urlencode(&format!("{path}?at={}", chosen.map_or("", |o| o.original_local.as_str())))),
        },
    )
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One event as iCalendar.
pub async fn event_ics(
    State(state): State<AppState>,
    Path((network_slug, site_slug, file)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    let event_id = file.strip_suffix(".ics").unwrap_or(&file);
    if uuid::Uuid::parse_str(event_id).is_err() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            crate::i18n::here("error-no-event"),
        ));
    }
    export(
        &state,
        ExportIcsRequest {
            event_id: event_id.to_owned(),
            ..Default::default()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct RsvpForm {
    at: String,
    /// "yes" or "no"
    going: String,
}

/// The signed-in visitor's answer; back to the event page.
pub async fn rsvp(
    State(state): State<AppState>,
    Path((network_slug, site_slug, event_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<RsvpForm>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    if uuid::Uuid::parse_str(&event_id).is_err() || form.at.len() > 32 {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            crate::i18n::here("error-no-event"),
        ));
    }
    let back = format!(
        "/n/{network_slug}/{site_slug}/events/{event_id}?at={}",
        urlencode(&form.at)
    );
    let Some(token) = session_token(&headers) else {
        return Ok((
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/signin?next={}", urlencode(&back)),
            )],
        )
            .into_response());
    };
    let going = match form.going.as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Err(PageError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "going: answer yes or no",
            ));
        }
    };
    state
        .calendar
        .clone()
        .rsvp(bearer(
            RsvpRequest {
                event_id,
                original_local: form.at,
                going,
            },
            Some(&token),
        ))
        .await
        .map_err(PageError::from_status)?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response())
}

/// An upcoming occurrence as pages show it (in its event's local time).
#[derive(Serialize)]
pub struct UpcomingView {
    href: String,
    title: String,
    day: String,
    time: String,
    time_zone: String,
    start_iso: String,
    location: String,
    site: String,
    summary_html: String,
}

/// Upcoming occurrences of a timeline, soonest first, from the aggregator.
async fn upcoming_occurrences(
    state: &AppState,
    scope: FeedScope,
    cursor: String,
    limit: u32,
) -> Result<(Vec<UpcomingOccurrence>, String), PageError> {
    let response = state
        .aggregator
        .clone()
        .upcoming(UpcomingRequest {
            scope: Some(scope),
            cursor,
            limit,
            ..Default::default()
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    Ok((response.occurrences, response.next_cursor))
}

/// The page of an occurrence.
fn occurrence_path(o: &UpcomingOccurrence) -> String {
    format!(
        "/n/{}/{}/events/{}?at={}",
        o.network_slug, o.site_slug, o.event_id, o.original_local
    )
}

/// Upcoming occurrences of a timeline, soonest first, as pages show them.
pub(crate) async fn upcoming(
    state: &AppState,
    scope: FeedScope,
    cursor: String,
    limit: u32,
) -> Result<(Vec<UpcomingView>, String), PageError> {
    let (occurrences, next) = upcoming_occurrences(state, scope, cursor, limit).await?;
    let views = occurrences
        .into_iter()
        .map(|o| {
            let (day, time) = o
                .start_local
                .split_once('T')
                .unwrap_or((&o.start_local, ""));
            UpcomingView {
                href: occurrence_path(&o),
                day: day.to_owned(),
                time: if o.all_day {
                    String::new()
                } else {
                    time.to_owned()
                },
                time_zone: o.time_zone.clone(),
                start_iso: anp_kit::from_timestamp(o.start.as_ref()).to_rfc3339(),
                location: o.location.clone(),
                site: format!("{}/{}", o.network_slug, o.site_slug),
                summary_html: o.summary_html.clone(),
                title: o.title.clone(),
            }
        })
        .collect();
    Ok((views, next))
}

/// Upcoming occurrences as feed entries: each dated by its start (for an
/// event, the date that matters), its id a UUID of its page, its summary
/// when and where it is, then the event's own.
fn occurrence_entries(
    occurrences: Vec<UpcomingOccurrence>,
) -> (Vec<FeedEntry>, HashMap<String, String>) {
    let mut paths = HashMap::new();
    let entries = occurrences
        .into_iter()
        .map(|o| {
            let path = occurrence_path(&o);
            let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, path.as_bytes()).to_string();
            paths.insert(id.clone(), path);
            let when = match (o.all_day, o.start_local.split_once('T')) {
                (false, Some((day, time))) => format!("{day} {time} ({})", o.time_zone),
                (_, Some((day, _))) => day.to_owned(),
                (_, None) => o.start_local.clone(),
            };
            let place = if o.location.is_empty() {
                String::new()
            } else {
                format!(" · {}", minijinja::HtmlEscape(&o.location))
            };
            let summary_html = format!(
                "<p>{}{place}</p>{}",
                minijinja::HtmlEscape(&when),
                o.summary_html
            );
            FeedEntry {
                id,
                title: o.title,
                body_html: summary_html.clone(),
                summary_html,
                site_name: format!("{}/{}", o.network_slug, o.site_slug),
                network_slug: o.network_slug,
                site_slug: o.site_slug,
                lang: String::new(),
                author: String::new(),
                published_at: o.start,
                updated_at: o.start,
            }
        })
        .collect();
    (entries, paths)
}

/// Upcoming events as Atom (the soonest 50) or JSON Feed (paged by
/// `?cursor=`).
async fn events_feed(
    state: &AppState,
    scope: FeedScope,
    title: &str,
    path: &str,
    format: FeedFormat,
    cursor: Option<String>,
) -> Result<Response, PageError> {
    let cursor = cursor.unwrap_or_default();
    if cursor.len() > 256 {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "cursor: malformed"));
    }
    let (occurrences, next) = upcoming_occurrences(state, scope, cursor, EVENTS_IN_A_FEED).await?;
    let (entries, paths) = occurrence_entries(occurrences);
    let base = state.public_url.clone();
    let url = |entry: &FeedEntry| {
        format!(
            "{base}{}",
            paths
                .get(&entry.id)
                .map(String::as_str)
                .unwrap_or("/events")
        )
    };
    Ok(feed_response(
        state, title, path, format, &entries, &next, url,
    ))
}

/// Every network's upcoming events as Atom or JSON Feed.
pub async fn umbrella_events_feed(
    State(state): State<AppState>,
    Query(query): Query<CursorQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let title = format!("Upcoming events · {}", state.umbrella_name);
    events_feed(
        &state,
        FeedScope::default(),
        &title,
        "/events",
        format,
        query.cursor,
    )
    .await
}

/// A network's upcoming events as Atom or JSON Feed.
pub async fn network_events_feed(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
    Query(query): Query<CursorQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    let scope = FeedScope {
        network_slug: network_slug.clone(),
        ..Default::default()
    };
    events_feed(
        &state,
        scope,
        &format!("Upcoming events · {network_slug}"),
        &format!("/n/{network_slug}/events"),
        format,
        query.cursor,
    )
    .await
}

#[derive(Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

async fn events_list(
    state: &AppState,
    scope: FeedScope,
    heading: String,
    path: String,
    cursor: Option<String>,
) -> Result<Response, PageError> {
    let ics_href = match &scope.network_slug {
        network if network.is_empty() => "/calendar.ics".to_owned(),
        network => format!("/n/{network}/calendar.ics"),
    };
    let cursor = cursor.unwrap_or_default();
    if cursor.len() > 256 {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "cursor: malformed"));
    }
    let (occurrences, next) = upcoming(state, scope, cursor, 30).await?;
    render(
        state,
        "events.html",
        context! {
            title => heading.clone(),
            heading => heading,
            umbrella_name => state.umbrella_name.clone(),
            occurrences => occurrences,
            ics_href => ics_href,
            next_href => (!next.is_empty()).then(|| format!("{path}?cursor={next}")),
        },
    )
}

/// "Upcoming events · <place>", in the reader's language.
fn upcoming_in(place: &str) -> String {
    crate::i18n::text_with(
        crate::i18n::current(),
        "upcoming-in",
        &[("place", Arg::Text(place))],
    )
}

/// Every network's upcoming events.
pub async fn umbrella_events(
    State(state): State<AppState>,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let heading = upcoming_in(&state.umbrella_name);
    events_list(
        &state,
        FeedScope::default(),
        heading,
        "/events".into(),
        query.cursor,
    )
    .await
}

/// A network's upcoming events (its sites' and those they co-host).
pub async fn network_events(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    let scope = FeedScope {
        network_slug: network_slug.clone(),
        ..Default::default()
    };
    events_list(
        &state,
        scope,
        upcoming_in(&network_slug),
        format!("/n/{network_slug}/events"),
        query.cursor,
    )
    .await
}
