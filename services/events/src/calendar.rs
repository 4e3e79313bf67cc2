//! A site's calendar events: every event carries the whole calendar event
//! after it (`EventScheduled`, `EventCancelled`, `OccurrenceCancelled`,
//! `OccurrenceRescheduled`); a `calendar_events` table lists a site's
//! events. Occurrences and iCalendar come from `anp-calendar`.

use anp_calendar::Schedule;
use anp_calendar::ics::{IcsEvent, calendar as ics_calendar};
pub use anp_calendar::state::{local_text, schedule_of};

/// A local wall time, `YYYY-MM-DDTHH:MM` (seconds allowed).
pub fn parse_local(field: &str, value: &str) -> Result<NaiveDateTime, EventsError> {
    Ok(anp_calendar::state::parse_local(field, value)?)
}
use anp_eventstore::{EventStore, ExpectedVersion, NewEvent, RecordedEvent};
use anp_kit::{Caller, check_slug, check_text};
use anp_proto::calendar::v1::{
    CalendarEvent, ExportIcsRequest, Host, IcsFile, ListOccurrencesRequest,
    ListOccurrencesResponse, Location, Occurrence, OccurrenceChange, OccurrenceRequest,
    RescheduleOccurrenceRequest, ScheduleEventRequest, UpdateEventRequest,
};
use anp_proto::events::v1::{
    CalendarEventState, CalendarLocation, CalendarOccurrenceChange, EventCancelled, EventScheduled,
    EventUpdated, OccurrenceCancelled, OccurrenceRescheduled,
};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::{Access, Role, Scope};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use prost::Message;
use tokio_postgres::GenericClient;
use tonic::transport::Channel;
use tracing::info;
use uuid::Uuid;

use crate::EventsError;

pub const TITLE_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_BYTES: usize = 64 * 1024;
pub const TEXT_MAX_CHARS: usize = 300;
pub const CAPACITY_MAX: u32 = 1_000_000;
/// The widest window of occurrences one call returns.
pub const WINDOW_MAX_DAYS: i64 = 366;
/// Events a listing or an export looks at (the newest that have not ended
/// more than a month ago).
const LISTED_EVENTS_MAX: i64 = 500;

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub async fn migrate(store: &EventStore) -> Result<(), EventsError> {
    anp_eventstore::run_migrations(
        store.pool(),
        "anp_events_migrations",
        embedded::migrations::runner(),
    )
    .await?;
    Ok(())
}

pub(crate) fn invalid(message: impl Into<String>) -> EventsError {
    EventsError::Invalid(message.into())
}

pub(crate) fn stream_id(event_id: Uuid) -> String {
    format!("calendar-event-{event_id}")
}

/// The event after its events (each carries the whole event).
pub fn fold(events: &[RecordedEvent]) -> Result<Option<(CalendarEventState, u64)>, EventsError> {
    let mut current = None;
    for event in events {
        // Every calendar event has the whole event as its first field.
        let state = EventScheduled::decode(event.payload.as_slice())
            .map_err(|err| EventsError::Corrupt(format!("{}: {err}", event.event_id)))?
            .event
            .ok_or_else(|| EventsError::Corrupt(format!("{}: no event", event.event_id)))?;
        current = Some((state, event.version));
    }
    Ok(current)
}

pub fn to_proto(state: &CalendarEventState, version: u64) -> CalendarEvent {
    let location = state.location.clone().unwrap_or_default();
    CalendarEvent {
        id: state.event_id.clone(),
        network_slug: state.network_slug.clone(),
        site_slug: state.site_slug.clone(),
        title: state.title.clone(),
        description_markdown: state.description_markdown.clone(),
        description_html: state.description_html.clone(),
        time_zone: state.time_zone.clone(),
        start_local: state.start_local.clone(),
        duration_minutes: state.duration_minutes,
        all_day: state.all_day,
        rrule: state.rrule.clone(),
        location: Some(Location {
            mode: location.mode,
            venue: location.venue,
            address: location.address,
            has_coordinates: location.has_coordinates,
            latitude: location.latitude,
            longitude: location.longitude,
            url: location.url,
        }),
        capacity: state.capacity,
        status: state.status.clone(),
        sequence: state.sequence,
        version,
        changes: state
            .changes
            .iter()
            .map(|change| OccurrenceChange {
                original_local: change.original_local.clone(),
                cancelled: change.cancelled,
                start_local: change.start_local.clone(),
                duration_minutes: change.duration_minutes,
            })
            .collect(),
        hosts: state
            .hosts
            .iter()
            .map(|host| Host {
                network_slug: host.network_slug.clone(),
                site_slug: host.site_slug.clone(),
                site_id: host.site_id.clone(),
                status: host.status.clone(),
            })
            .collect(),
        source_uid: state.source_uid.clone(),
    }
}

/// The details of a new or changed event, checked field by field (the ids,
/// hosts and status are the caller's to fill in).
pub fn details(
    request: &ScheduleEventRequest,
    author: &str,
) -> Result<CalendarEventState, EventsError> {
    check_text("title", &request.title, TITLE_MAX_CHARS).map_err(EventsError::Invalid)?;
    if request.description_markdown.len() > DESCRIPTION_MAX_BYTES
        || request.description_markdown.contains('\0')
    {
        return Err(invalid(format!(
            "description_markdown: at most {DESCRIPTION_MAX_BYTES} bytes, without NUL"
        )));
    }
    if request.capacity > CAPACITY_MAX {
        return Err(invalid(format!("capacity: at most {CAPACITY_MAX}")));
    }
    let location = check_location(request.location.as_ref())?;
    let start = parse_local("start_local", &request.start_local)?;
    let duration_minutes = if request.all_day {
        request.duration_minutes.max(1440) / 1440 * 1440
    } else {
        request.duration_minutes
    };
    let state = CalendarEventState {
        title: request.title.trim().to_owned(),
        description_markdown: request.description_markdown.clone(),
        description_html: anp_markdown::markdown_to_safe_html(&request.description_markdown),
        time_zone: request.time_zone.clone(),
        start_local: local_text(start),
        duration_minutes,
        all_day: request.all_day,
        rrule: request.rrule.trim().to_owned(),
        location: Some(location),
        capacity: request.capacity,
        status: "scheduled".into(),
        author: author.to_owned(),
        ..Default::default()
    };
    schedule_of(&state)?.check()?;
    Ok(state)
}

/// Changes and answers need an event that is not cancelled.
pub(crate) fn ensure_scheduled(state: &CalendarEventState) -> Result<(), EventsError> {
    if state.status == "cancelled" {
        return Err(EventsError::Precondition(format!(
            "event_id: event {} is cancelled",
            state.event_id
        )));
    }
    Ok(())
}

/// A site by its slugs, checked.
pub(crate) fn site_scope(network_slug: &str, site_slug: &str) -> Result<Scope, EventsError> {
    check_slug("network_slug", network_slug).map_err(EventsError::Invalid)?;
    check_slug("site_slug", site_slug).map_err(EventsError::Invalid)?;
    Ok(Scope {
        network_slug: network_slug.to_owned(),
        site_slug: site_slug.to_owned(),
        site_id: String::new(),
    })
}

/// Which events a listing or an export is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Site {
        network_slug: String,
        site_slug: String,
    },
    Network {
        network_slug: String,
    },
    Umbrella,
}

impl Listing {
    pub fn of(network_slug: &str, site_slug: &str) -> Result<Listing, EventsError> {
        match (network_slug.is_empty(), site_slug.is_empty()) {
            (true, true) => Ok(Listing::Umbrella),
            (true, false) => Err(invalid("network_slug: needed with site_slug")),
            (false, true) => {
                check_slug("network_slug", network_slug).map_err(EventsError::Invalid)?;
                Ok(Listing::Network {
                    network_slug: network_slug.to_owned(),
                })
            }
            (false, false) => {
                check_slug("network_slug", network_slug).map_err(EventsError::Invalid)?;
                check_slug("site_slug", site_slug).map_err(EventsError::Invalid)?;
                Ok(Listing::Site {
                    network_slug: network_slug.to_owned(),
                    site_slug: site_slug.to_owned(),
                })
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Listing::Site {
                network_slug,
                site_slug,
            } => format!("{network_slug}/{site_slug}"),
            Listing::Network { network_slug } => network_slug.clone(),
            Listing::Umbrella => "all networks".into(),
        }
    }
}

fn check_location(location: Option<&Location>) -> Result<CalendarLocation, EventsError> {
    let location = location.cloned().unwrap_or_default();
    let mode = match location.mode.as_str() {
        "" | "in_person" => "in_person",
        "online" => "online",
        "mixed" => "mixed",
        other => {
            return Err(invalid(format!(
                "location.mode: {other:?} is not in_person, online or mixed"
            )));
        }
    };
    for (field, value) in [
        ("location.venue", &location.venue),
        ("location.address", &location.address),
    ] {
        if value.chars().count() > TEXT_MAX_CHARS || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field}: at most {TEXT_MAX_CHARS} characters, on one line"
            )));
        }
    }
    if !location.url.is_empty()
        && (location.url.len() > 2000
            || !(location.url.starts_with("https://") || location.url.starts_with("http://"))
            || location
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(invalid(
            "location.url: an http(s) URL of at most 2000 characters",
        ));
    }
    if mode != "in_person" && location.url.is_empty() {
        return Err(invalid(
            "location.url: an online or mixed event needs its link",
        ));
    }
    if location.has_coordinates
        && !((-90.0..=90.0).contains(&location.latitude)
            && (-180.0..=180.0).contains(&location.longitude))
    {
        return Err(invalid(
            "location.latitude: latitude -90..90 and longitude -180..180",
        ));
    }
    Ok(CalendarLocation {
        mode: mode.to_owned(),
        venue: location.venue.trim().to_owned(),
        address: location.address.trim().to_owned(),
        has_coordinates: location.has_coordinates,
        latitude: location.latitude,
        longitude: location.longitude,
        url: location.url,
    })
}

/// The service's logic.
#[derive(Clone)]
pub struct Calendar {
    pub(crate) store: EventStore,
    pub(crate) sites: SitesServiceClient<Channel>,
    pub(crate) imports: anp_fetch::Limits,
}

impl Calendar {
    pub fn new(
        store: EventStore,
        sites: SitesServiceClient<Channel>,
        imports: anp_fetch::Limits,
    ) -> Self {
        Calendar {
            store,
            sites,
            imports,
        }
    }

    pub(crate) async fn access(
        &self,
        token: Option<&str>,
        scope: Scope,
    ) -> Result<Access, EventsError> {
        anp_kit::sites_access(&self.sites, token, scope)
            .await
            .map_err(EventsError::Sites)
    }

    /// Editors and above, while the network is active and the site live.
    pub(crate) async fn authorize(&self, token: &str, scope: Scope) -> Result<Access, EventsError> {
        let access = self.access(Some(token), scope).await?;
        if Role::try_from(access.role).unwrap_or(Role::Unspecified) < Role::Editor {
            return Err(EventsError::Denied(
                "permission: the calendar is written by the site's editors".into(),
            ));
        }
        if !access.writable {
            return Err(EventsError::Precondition(
                "site_slug: the network is suspended or the site archived".into(),
            ));
        }
        Ok(access)
    }

    pub(crate) async fn save(
        &self,
        event_type: &str,
        payload: Vec<u8>,
        state: &CalendarEventState,
        expected: ExpectedVersion,
        caller: &Caller,
    ) -> Result<CalendarEvent, EventsError> {
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        let version = save_in(&*tx, event_type, payload, state, expected, caller).await?;
        tx.commit().await?;
        info!(event_id = %state.event_id, event_type, version, "calendar event saved");
        Ok(to_proto(state, version))
    }

    pub(crate) async fn load(
        &self,
        event_id: &str,
    ) -> Result<(CalendarEventState, u64), EventsError> {
        let id: Uuid = event_id
            .parse()
            .map_err(|_| invalid(format!("event_id: {event_id:?} is not a UUID")))?;
        let events = self.store.load_stream(&stream_id(id)).await?;
        fold(&events)?.ok_or_else(|| EventsError::NotFound(format!("event_id: no event {id}")))
    }

    pub async fn schedule_event(
        &self,
        request: &ScheduleEventRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let state = CalendarEventState {
            event_id: Uuid::now_v7().to_string(),
            ..details(request, &caller.actor)?
        };
        let access = self.authorize(token, scope).await?;
        let site = access.site.unwrap_or_default();
        let state = CalendarEventState {
            network_id: site.network_id.clone(),
            network_slug: site.network_slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            ..state
        };
        let payload = EventScheduled {
            event: Some(state.clone()),
        }
        .encode_to_vec();
        self.save(
            "EventScheduled",
            payload,
            &state,
            ExpectedVersion::NoStream,
            &caller,
        )
        .await
    }

    /// Loads an event and checks the caller edits its site's calendar.
    pub(crate) async fn load_for_change(
        &self,
        event_id: &str,
        token: &str,
    ) -> Result<(CalendarEventState, u64), EventsError> {
        let (state, version) = self.load(event_id).await?;
        self.authorize(
            token,
            Scope {
                site_id: state.site_id.clone(),
                ..Default::default()
            },
        )
        .await?;
        ensure_scheduled(&state)?;
        Ok((state, version))
    }

    pub async fn cancel_event(
        &self,
        event_id: &str,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let (mut state, version) = self.load_for_change(event_id, token).await?;
        state.status = "cancelled".into();
        state.sequence += 1;
        let payload = EventCancelled {
            event: Some(state.clone()),
        }
        .encode_to_vec();
        self.save(
            "EventCancelled",
            payload,
            &state,
            ExpectedVersion::Exact(version),
            &caller,
        )
        .await
    }

    pub async fn update_event(
        &self,
        request: &UpdateEventRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let details = details(
            request
                .details
                .as_ref()
                .ok_or_else(|| invalid("details: missing"))?,
            &caller.actor,
        )?;
        let (current, version) = self.load_for_change(&request.event_id, token).await?;
        if request.expected_version != 0 && request.expected_version != version {
            return Err(EventsError::Store(anp_eventstore::StoreError::Conflict {
                stream_id: stream_id(current.event_id.parse().unwrap_or_default()),
                expected: request.expected_version,
                actual: version,
            }));
        }
        let mut state = CalendarEventState {
            event_id: current.event_id.clone(),
            network_id: current.network_id.clone(),
            network_slug: current.network_slug.clone(),
            site_id: current.site_id.clone(),
            site_slug: current.site_slug.clone(),
            status: current.status.clone(),
            sequence: current.sequence + 1,
            hosts: current.hosts.clone(),
            source_uid: current.source_uid.clone(),
            author: current.author.clone(),
            changes: vec![],
            ..details
        };
        // Changes of occurrences still in the series stay.
        for change in &current.changes {
            let original = parse_local("original_local", &change.original_local)?;
            if Self::check_occurrence(&state, original).is_ok() {
                state.changes.push(change.clone());
            }
        }
        schedule_of(&state)?.check()?;
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        let version = save_in(
            &*tx,
            "EventUpdated",
            EventUpdated {
                event: Some(state.clone()),
            }
            .encode_to_vec(),
            &state,
            ExpectedVersion::Exact(version),
            &caller,
        )
        .await?;
        // More places: people on the waitlists move up.
        if state.capacity == 0 || state.capacity > current.capacity {
            crate::rsvps::promote_all(&*tx, &state, &caller).await?;
        }
        tx.commit().await?;
        info!(event_id = %state.event_id, version, "calendar event updated");
        Ok(to_proto(&state, version))
    }

    /// Checks `original` is an occurrence of the series.
    pub(crate) fn check_occurrence(
        state: &CalendarEventState,
        original: NaiveDateTime,
    ) -> Result<(), EventsError> {
        let schedule = schedule_of(state)?;
        let at = anp_calendar::schedule::to_utc(schedule.tz, original);
        let near = schedule.occurrences(at - Duration::days(1), at + Duration::days(1))?;
        if near
            .iter()
            .any(|occurrence| occurrence.original == original)
        {
            Ok(())
        } else {
            Err(invalid(format!(
                "original_local: {} is not an occurrence of this event",
                local_text(original)
            )))
        }
    }

    pub async fn cancel_occurrence(
        &self,
        request: &OccurrenceRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let original = parse_local("original_local", &request.original_local)?;
        let (mut state, version) = self.load_for_change(&request.event_id, token).await?;
        Self::check_occurrence(&state, original)?;
        state
            .changes
            .retain(|change| change.original_local != local_text(original));
        state.changes.push(CalendarOccurrenceChange {
            original_local: local_text(original),
            cancelled: true,
            ..Default::default()
        });
        state.sequence += 1;
        let payload = OccurrenceCancelled {
            event: Some(state.clone()),
            original_local: local_text(original),
        }
        .encode_to_vec();
        self.save(
            "OccurrenceCancelled",
            payload,
            &state,
            ExpectedVersion::Exact(version),
            &caller,
        )
        .await
    }

    pub async fn reschedule_occurrence(
        &self,
        request: &RescheduleOccurrenceRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let original = parse_local("original_local", &request.original_local)?;
        let start = parse_local("start_local", &request.start_local)?;
        let (mut state, version) = self.load_for_change(&request.event_id, token).await?;
        Self::check_occurrence(&state, original)?;
        let duration = if request.duration_minutes == 0 {
            state.duration_minutes
        } else {
            request.duration_minutes
        };
        state
            .changes
            .retain(|change| change.original_local != local_text(original));
        state.changes.push(CalendarOccurrenceChange {
            original_local: local_text(original),
            cancelled: false,
            start_local: local_text(start),
            duration_minutes: duration,
        });
        schedule_of(&state)?.check()?;
        state.sequence += 1;
        let payload = OccurrenceRescheduled {
            event: Some(state.clone()),
            original_local: local_text(original),
        }
        .encode_to_vec();
        self.save(
            "OccurrenceRescheduled",
            payload,
            &state,
            ExpectedVersion::Exact(version),
            &caller,
        )
        .await
    }

    pub async fn get_event(&self, event_id: &str) -> Result<CalendarEvent, EventsError> {
        let (state, version) = self.load(event_id).await?;
        Ok(to_proto(&state, version))
    }

    /// The events of a site (its own and those it co-hosts), a network (of
    /// its sites) or the umbrella: the newest [`LISTED_EVENTS_MAX`] that have
    /// not ended more than a month ago.
    pub(crate) async fn events_in(
        &self,
        listing: &Listing,
    ) -> Result<Vec<(CalendarEventState, u64)>, EventsError> {
        let scope = match listing {
            Listing::Site {
                network_slug,
                site_slug,
            } => Some(Scope {
                network_slug: network_slug.clone(),
                site_slug: site_slug.clone(),
                site_id: String::new(),
            }),
            Listing::Network { network_slug } => Some(Scope {
                network_slug: network_slug.clone(),
                ..Default::default()
            }),
            Listing::Umbrella => None,
        };
        let recent = "(e.last_end IS NULL OR e.last_end > now() - interval '31 days')";
        let client = self.store.pool().get().await?;
        let rows = match scope {
            None => {
                client
                    .query(
                        &format!(
                            "SELECT e.event_id FROM calendar_events e WHERE {recent} \
                             ORDER BY e.event_id DESC LIMIT $1"
                        ),
                        &[&LISTED_EVENTS_MAX],
                    )
                    .await?
            }
            Some(scope) => {
                let access = self.access(None, scope).await?;
                let bad = || EventsError::Sites(tonic::Status::internal("bad id"));
                let (column, id): (&str, Uuid) = match access.site {
                    Some(site) => ("site_id", site.id.parse().map_err(|_| bad())?),
                    None => (
                        "network_id",
                        access
                            .network
                            .unwrap_or_default()
                            .id
                            .parse()
                            .map_err(|_| bad())?,
                    ),
                };
                client
                    .query(
                        &format!(
                            "SELECT DISTINCT e.event_id FROM calendar_hosts h \
                             JOIN calendar_events e USING (event_id) \
                             WHERE h.{column} = $1 AND h.status IN ('origin', 'accepted') \
                               AND {recent} ORDER BY e.event_id DESC LIMIT $2"
                        ),
                        &[&id, &LISTED_EVENTS_MAX],
                    )
                    .await?
            }
        };
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.get(0);
            let stream = anp_eventstore::load_stream_in(&**client, &stream_id(event_id)).await?;
            if let Some(event) = fold(&stream)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    pub async fn list_occurrences(
        &self,
        request: &ListOccurrencesRequest,
    ) -> Result<ListOccurrencesResponse, EventsError> {
        let from = anp_kit::from_timestamp(request.from.as_ref());
        let to = match &request.to {
            Some(to) => anp_kit::from_timestamp(Some(to)),
            None => from + Duration::days(31),
        };
        if to <= from {
            return Err(invalid("to: must be after from"));
        }
        if to - from > Duration::days(WINDOW_MAX_DAYS) {
            return Err(invalid(format!(
                "to: at most {WINDOW_MAX_DAYS} days after from"
            )));
        }
        let mut occurrences = Vec::new();
        let listing = Listing::of(&request.network_slug, &request.site_slug)?;
        if listing == Listing::Umbrella {
            return Err(invalid("network_slug: must not be empty"));
        }
        for (state, _) in self.events_in(&listing).await? {
            let schedule = schedule_of(&state)?;
            for occurrence in schedule.occurrences(from, to)? {
                occurrences.push(Occurrence {
                    event_id: state.event_id.clone(),
                    title: state.title.clone(),
                    original_local: local_text(occurrence.original),
                    start_local: local_text(occurrence.local_start),
                    time_zone: state.time_zone.clone(),
                    start: Some(anp_kit::timestamp(occurrence.start)),
                    end: Some(anp_kit::timestamp(occurrence.end)),
                    cancelled: occurrence.cancelled || state.status == "cancelled",
                    all_day: state.all_day,
                });
            }
        }
        occurrences
            .sort_by_key(|occurrence| occurrence.start.map(|start| (start.seconds, start.nanos)));
        Ok(ListOccurrencesResponse { occurrences })
    }

    pub async fn export_ics(&self, request: &ExportIcsRequest) -> Result<IcsFile, EventsError> {
        let (name, events) = if request.event_id.is_empty() {
            let listing = Listing::of(&request.network_slug, &request.site_slug)?;
            (listing.name(), self.events_in(&listing).await?)
        } else {
            let event = self.load(&request.event_id).await?;
            (event.0.title.clone(), vec![event])
        };
        let schedules: Vec<Schedule> = events
            .iter()
            .map(|(state, _)| schedule_of(state))
            .collect::<Result<_, _>>()?;
        let now: DateTime<Utc> = Utc::now();
        let ics_events: Vec<IcsEvent<'_>> = events
            .iter()
            .zip(&schedules)
            .map(|((state, _), schedule)| {
                let location = state.location.as_ref();
                IcsEvent {
                    uid: format!("{}@anp", state.event_id),
                    summary: &state.title,
                    description: &state.description_markdown,
                    location: location.map_or("", |l| {
                        if l.address.is_empty() {
                            l.venue.as_str()
                        } else {
                            l.address.as_str()
                        }
                    }),
                    url: location.map_or("", |l| l.url.as_str()),
                    geo: location
                        .filter(|l| l.has_coordinates)
                        .map(|l| (l.latitude, l.longitude)),
                    schedule,
                    sequence: state.sequence,
                    cancelled: state.status == "cancelled",
                    stamp: now,
                }
            })
            .collect();
        Ok(IcsFile {
            text: ics_calendar(&name, &ics_events),
        })
    }
}

/// Appends one event of a calendar event and writes the tables, in `tx`.
pub(crate) async fn save_in<C: GenericClient>(
    tx: &C,
    event_type: &str,
    payload: Vec<u8>,
    state: &CalendarEventState,
    expected: ExpectedVersion,
    caller: &Caller,
) -> Result<u64, EventsError> {
    let corrupt = |what: &str| EventsError::Corrupt(format!("state {what}"));
    let event_id: Uuid = state.event_id.parse().map_err(|_| corrupt("event_id"))?;
    let event = NewEvent::new(
        event_type,
        state
            .network_id
            .parse()
            .map_err(|_| corrupt("network_id"))?,
        &caller.actor,
        payload,
    )
    .with_site(state.site_id.parse().map_err(|_| corrupt("site_id"))?)
    .with_traceparent(caller.traceparent.clone());
    let recorded = anp_eventstore::append_in(tx, &stream_id(event_id), expected, &[event]).await?;
    let version = recorded.last().map_or(1, |event| event.version);
    write_row(tx, state, version).await?;
    Ok(version)
}

/// The tables after an event: the event's row (guarded by version) and the
/// sites it shows in.
async fn write_row<C: GenericClient>(
    client: &C,
    state: &CalendarEventState,
    version: u64,
) -> Result<(), EventsError> {
    let corrupt = |what: &str| EventsError::Corrupt(format!("state {what}"));
    let event_id: Uuid = state.event_id.parse().map_err(|_| corrupt("event_id"))?;
    let network_id: Uuid = state
        .network_id
        .parse()
        .map_err(|_| corrupt("network_id"))?;
    let site_id: Uuid = state.site_id.parse().map_err(|_| corrupt("site_id"))?;
    let last_end = schedule_of(state)?.last_end()?;
    let source_uid = (!state.source_uid.is_empty()).then_some(state.source_uid.as_str());
    let newer = client
        .query_opt(
            "INSERT INTO calendar_events \
               (event_id, network_id, site_id, status, version, source_uid, last_end) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO UPDATE SET \
             status = EXCLUDED.status, version = EXCLUDED.version, \
             source_uid = EXCLUDED.source_uid, last_end = EXCLUDED.last_end \
             WHERE calendar_events.version < EXCLUDED.version RETURNING 1",
            &[
                &event_id,
                &network_id,
                &site_id,
                &state.status,
                &(version as i64),
                &source_uid,
                &last_end,
            ],
        )
        .await?
        .is_some();
    if !newer {
        return Ok(());
    }
    client
        .execute(
            "DELETE FROM calendar_hosts WHERE event_id = $1",
            &[&event_id],
        )
        .await?;
    client
        .execute(
            "INSERT INTO calendar_hosts (event_id, site_id, network_id, status) \
             VALUES ($1, $2, $3, 'origin')",
            &[&event_id, &site_id, &network_id],
        )
        .await?;
    for host in &state.hosts {
        let (Ok(host_site), Ok(host_network)) = (
            host.site_id.parse::<Uuid>(),
            host.network_id.parse::<Uuid>(),
        ) else {
            return Err(corrupt("host"));
        };
        client
            .execute(
                "INSERT INTO calendar_hosts (event_id, site_id, network_id, status) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&event_id, &host_site, &host_network, &host.status],
            )
            .await?;
    }
    Ok(())
}

/// The table's side of importing and purging a network's events.
pub struct Tables;

#[tonic::async_trait]
impl anp_archive::service::StateTables for Tables {
    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), String> {
        if event.stream_id.starts_with(crate::rsvps::STREAM_PREFIX) {
            return crate::rsvps::write_rows(tx, event)
                .await
                .map_err(|err| err.to_string());
        }
        let Some((state, _)) = fold(std::slice::from_ref(event)).map_err(|err| err.to_string())?
        else {
            return Ok(());
        };
        write_row(tx, &state, event.version)
            .await
            .map_err(|err| err.to_string())
    }

    async fn purge(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        network_id: Uuid,
    ) -> Result<(), String> {
        crate::hosts::withdraw_hosts_in(tx, network_id)
            .await
            .map_err(|err| err.to_string())?;
        for statement in [
            "DELETE FROM calendar_hosts WHERE event_id IN \
               (SELECT event_id FROM calendar_events WHERE network_id = $1)",
            "DELETE FROM calendar_events WHERE network_id = $1",
            "DELETE FROM calendar_rsvps WHERE network_id = $1",
        ] {
            tx.execute(statement, &[&network_id])
                .await
                .map_err(|err| err.to_string())?;
        }
        Ok(())
    }
}
