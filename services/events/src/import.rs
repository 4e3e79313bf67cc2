//! Importing an iCalendar file or URL into a site's calendar. Each event
//! keeps the UID it had there, so importing the same calendar again updates
//! what changed (a new SEQUENCE) and adds nothing twice. One transaction:
//! the whole file comes in, or nothing.

use anp_calendar::Exception;
use anp_calendar::import::{ImportedEvent, parse_ics};
use anp_eventstore::ExpectedVersion;
use anp_kit::Caller;
use anp_proto::calendar::v1::{
    ImportIcsRequest, ImportIcsResponse, Location, ScheduleEventRequest,
};
use anp_proto::events::v1::{
    CalendarEventState, CalendarOccurrenceChange, EventCancelled, EventScheduled, EventUpdated,
};
use prost::Message;
use uuid::Uuid;

use crate::EventsError;
use crate::calendar::{
    Calendar, DESCRIPTION_MAX_BYTES, TEXT_MAX_CHARS, TITLE_MAX_CHARS, details, fold, invalid,
    local_text, save_in, site_scope, stream_id,
};

/// The largest file imported.
pub const IMPORT_MAX_BYTES: usize = 1024 * 1024;
/// Events one import brings at most.
pub const IMPORT_EVENTS_MAX: usize = 500;

fn cut(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max_chars)
        .collect()
}

/// An imported event as the details the service checks.
fn request_of(event: &ImportedEvent) -> ScheduleEventRequest {
    let schedule = &event.schedule;
    let url = if event.url.starts_with("https://") || event.url.starts_with("http://") {
        cut(&event.url, 2000)
    } else {
        String::new()
    };
    let mut description = event.description.clone();
    if description.len() > DESCRIPTION_MAX_BYTES {
        let mut end = DESCRIPTION_MAX_BYTES;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    let title = cut(
        event.summary.lines().next().unwrap_or_default(),
        TITLE_MAX_CHARS,
    );
    ScheduleEventRequest {
        title: if title.trim().is_empty() {
            "(untitled)".into()
        } else {
            title
        },
        description_markdown: description.replace('\0', ""),
        time_zone: schedule.tz.name().to_owned(),
        start_local: local_text(schedule.start),
        duration_minutes: schedule.duration.num_minutes().clamp(0, u32::MAX as i64) as u32,
        all_day: schedule.all_day,
        rrule: schedule.rrule.clone().unwrap_or_default(),
        location: Some(Location {
            mode: "in_person".into(),
            venue: cut(&event.location.replace('\n', ", "), TEXT_MAX_CHARS),
            has_coordinates: event.geo.is_some(),
            latitude: event.geo.map_or(0.0, |geo| geo.0),
            longitude: event.geo.map_or(0.0, |geo| geo.1),
            url,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn changes_of(event: &ImportedEvent) -> Vec<CalendarOccurrenceChange> {
    event
        .schedule
        .exceptions
        .iter()
        .map(|(original, exception)| match exception {
            Exception::Cancelled => CalendarOccurrenceChange {
                original_local: local_text(*original),
                cancelled: true,
                ..Default::default()
            },
            Exception::Moved { start, duration } => CalendarOccurrenceChange {
                original_local: local_text(*original),
                cancelled: false,
                start_local: local_text(*start),
                duration_minutes: duration.num_minutes().clamp(0, u32::MAX as i64) as u32,
            },
        })
        .collect()
}

/// What calendar apps would notice: everything but ids, hosts and sequence.
fn same_event(a: &CalendarEventState, b: &CalendarEventState) -> bool {
    let strip = |state: &CalendarEventState| CalendarEventState {
        event_id: String::new(),
        network_id: String::new(),
        network_slug: String::new(),
        site_id: String::new(),
        site_slug: String::new(),
        sequence: 0,
        hosts: vec![],
        author: String::new(),
        capacity: 0,
        ..state.clone()
    };
    strip(a) == strip(b)
}

impl Calendar {
    pub async fn import_ics(
        &self,
        request: &ImportIcsRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ImportIcsResponse, EventsError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let default_tz = if request.default_time_zone.is_empty() {
            chrono_tz::UTC
        } else {
            anp_calendar::schedule::parse_tz(&request.default_time_zone).map_err(|_| {
                invalid(format!(
                    "default_time_zone: {:?} is not an IANA time zone",
                    request.default_time_zone
                ))
            })?
        };
        if request.text.len() > IMPORT_MAX_BYTES {
            return Err(invalid(format!("text: at most {IMPORT_MAX_BYTES} bytes")));
        }
        if request.text.is_empty() == request.url.is_empty() {
            return Err(invalid(
                "text: give the file's text or its url, one of them",
            ));
        }
        if request.url.len() > 2000 {
            return Err(invalid("url: at most 2000 characters"));
        }
        let access = self.authorize(token, scope).await?;
        let site = access.site.unwrap_or_default();
        let text = if request.url.is_empty() {
            request.text.clone()
        } else {
            let limits = anp_fetch::Limits {
                max_bytes: self.imports.max_bytes.min(IMPORT_MAX_BYTES),
                ..self.imports.clone()
            };
            match anp_fetch::fetch(&request.url, None, None, &limits).await {
                Ok(anp_fetch::Fetched::Body { bytes, .. }) => String::from_utf8(bytes)
                    .map_err(|_| invalid("url: the calendar is not UTF-8 text"))?,
                Ok(anp_fetch::Fetched::NotModified) => {
                    return Err(invalid("url: the server sent nothing (304)"));
                }
                Err(err) => return Err(invalid(format!("url: {err}"))),
            }
        };
        let imported = parse_ics(&text, default_tz, IMPORT_EVENTS_MAX)?;
        let mut response = ImportIcsResponse {
            notes: imported.notes,
            ..Default::default()
        };
        let site_uuid: Uuid = site
            .id
            .parse()
            .map_err(|_| EventsError::Sites(tonic::Status::internal("bad site id")))?;
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        for event in &imported.events {
            let mut state = match details(&request_of(event), &caller.actor) {
                Ok(state) => state,
                Err(err) => {
                    response
                        .notes
                        .push(format!("event {:?}: skipped, {err}", event.uid));
                    continue;
                }
            };
            state.changes = changes_of(event);
            state.source_uid = event.uid.clone();
            if event.cancelled {
                state.status = "cancelled".into();
            }
            let existing = tx
                .query_opt(
                    "SELECT event_id FROM calendar_events WHERE site_id = $1 AND source_uid = $2",
                    &[&site_uuid, &event.uid],
                )
                .await?;
            let (event_type, payload, state, expected) = match existing {
                None => {
                    let state = CalendarEventState {
                        event_id: Uuid::now_v7().to_string(),
                        network_id: site.network_id.clone(),
                        network_slug: site.network_slug.clone(),
                        site_id: site.id.clone(),
                        site_slug: site.slug.clone(),
                        ..state
                    };
                    response.created += 1;
                    let payload = EventScheduled {
                        event: Some(state.clone()),
                    }
                    .encode_to_vec();
                    ("EventScheduled", payload, state, ExpectedVersion::NoStream)
                }
                Some(row) => {
                    let event_id: Uuid = row.get(0);
                    let stream = anp_eventstore::load_stream_in(&*tx, &stream_id(event_id)).await?;
                    let Some((current, version)) = fold(&stream)? else {
                        continue;
                    };
                    let state = CalendarEventState {
                        event_id: current.event_id.clone(),
                        network_id: current.network_id.clone(),
                        network_slug: current.network_slug.clone(),
                        site_id: current.site_id.clone(),
                        site_slug: current.site_slug.clone(),
                        hosts: current.hosts.clone(),
                        capacity: current.capacity,
                        author: current.author.clone(),
                        sequence: current.sequence + 1,
                        ..state
                    };
                    response.event_ids.push(current.event_id.clone());
                    if same_event(&current, &state) {
                        response.unchanged += 1;
                        continue;
                    }
                    response.updated += 1;
                    let payload = if state.status == "cancelled" {
                        EventCancelled {
                            event: Some(state.clone()),
                        }
                        .encode_to_vec()
                    } else {
                        EventUpdated {
                            event: Some(state.clone()),
                        }
                        .encode_to_vec()
                    };
                    let event_type = if state.status == "cancelled" {
                        "EventCancelled"
                    } else {
                        "EventUpdated"
                    };
                    (event_type, payload, state, ExpectedVersion::Exact(version))
                }
            };
            if expected == ExpectedVersion::NoStream {
                response.event_ids.push(state.event_id.clone());
            }
            save_in(&*tx, event_type, payload, &state, expected, &caller).await?;
        }
        tx.commit().await?;
        tracing::info!(
            site_id = %site.id,
            created = response.created,
            updated = response.updated,
            unchanged = response.unchanged,
            notes = response.notes.len(),
            "calendar imported"
        );
        Ok(response)
    }
}
