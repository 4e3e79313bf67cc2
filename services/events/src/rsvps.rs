//! RSVPs: signed-in accounts say they are going to one occurrence. Past the
//! event's capacity they join a waitlist in order of arrival; when a place
//! frees up (someone withdraws, or the capacity grows) the first on the
//! waitlist gets it, in the same transaction. Answers are events of the
//! stream `rsvps-<event id>` (`RsvpsChanged`) and rows of `calendar_rsvps`;
//! the event's row is locked while deciding, so two last places are never
//! given twice. Counts are public; names are for the hosts' editors only.

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent};
use anp_kit::Caller;
use anp_proto::calendar::v1::{Attendee, GetRsvpsRequest, RsvpRequest, RsvpSummary};
use anp_proto::events::v1::{CalendarEventState, RsvpChange, RsvpsChanged};
use anp_proto::sites::v1::{Role, Scope};
use chrono::{DateTime, Duration, Utc};
use prost::Message;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::EventsError;
use crate::calendar::{Calendar, ensure_scheduled, invalid, local_text, parse_local, schedule_of};

pub const STREAM_PREFIX: &str = "rsvps-";
/// Names and ids in one answer to the hosts' editors.
const ATTENDEES_MAX: i64 = 2000;

fn stream_of(event_id: &str) -> String {
    format!("{STREAM_PREFIX}{event_id}")
}

/// The occurrence an RSVP is about: its original local start (the first for
/// a one-off event), checked to be in the series, not cancelled, not over.
fn occurrence_key(state: &CalendarEventState, original_local: &str) -> Result<String, EventsError> {
    ensure_scheduled(state)?;
    let original = if original_local.is_empty() {
        if !state.rrule.is_empty() {
            return Err(invalid(
                "original_local: which occurrence of this recurring event",
            ));
        }
        parse_local("start_local", &state.start_local)?
    } else {
        parse_local("original_local", original_local)?
    };
    let schedule = schedule_of(state)?;
    let at = anp_calendar::schedule::to_utc(schedule.tz, original);
    let occurrence = schedule
        .occurrences(at - Duration::days(40), at + Duration::days(40))?
        .into_iter()
        .find(|occurrence| occurrence.original == original)
        .ok_or_else(|| {
            invalid(format!(
                "original_local: {} is not an occurrence of this event",
                local_text(original)
            ))
        })?;
    if occurrence.cancelled {
        return Err(EventsError::Precondition(format!(
            "original_local: the occurrence of {} is cancelled",
            local_text(original)
        )));
    }
    if occurrence.end <= Utc::now() {
        return Err(EventsError::Precondition(format!(
            "original_local: the occurrence of {} is over",
            local_text(original)
        )));
    }
    Ok(local_text(original))
}

async fn status_of<C: GenericClient>(
    client: &C,
    event_id: Uuid,
    original: &str,
    account_id: Uuid,
) -> Result<Option<(String, DateTime<Utc>)>, EventsError> {
    Ok(client
        .query_opt(
            "SELECT status, at FROM calendar_rsvps \
             WHERE event_id = $1 AND original_local = $2 AND account_id = $3",
            &[&event_id, &original, &account_id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

async fn going_count<C: GenericClient>(
    client: &C,
    event_id: Uuid,
    original: &str,
) -> Result<u32, EventsError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM calendar_rsvps \
             WHERE event_id = $1 AND original_local = $2 AND status = 'going'",
            &[&event_id, &original],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u32)
}

/// The first on the waitlist, as many as there are free places.
async fn promotions<C: GenericClient>(
    client: &C,
    event_id: Uuid,
    original: &str,
    capacity: u32,
    now: DateTime<Utc>,
) -> Result<Vec<RsvpChange>, EventsError> {
    let going = going_count(client, event_id, original).await?;
    let free = if capacity == 0 {
        i64::MAX
    } else {
        i64::from(capacity.saturating_sub(going))
    };
    if free == 0 {
        return Ok(vec![]);
    }
    let rows = client
        .query(
            "SELECT account_id, display_name FROM calendar_rsvps \
             WHERE event_id = $1 AND original_local = $2 AND status = 'waitlisted' \
             ORDER BY at, account_id LIMIT $3",
            &[&event_id, &original, &free.min(ATTENDEES_MAX)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RsvpChange {
            account_id: row.get::<_, Uuid>(0).to_string(),
            status: "going".into(),
            at: Some(anp_kit::timestamp(now)),
            display_name: row.get(1),
        })
        .collect())
}

/// Records changes of one occurrence's RSVPs, in `tx`.
async fn record<C: GenericClient>(
    tx: &C,
    state: &CalendarEventState,
    original: &str,
    changes: Vec<RsvpChange>,
    caller: &Caller,
) -> Result<(), EventsError> {
    if changes.is_empty() {
        return Ok(());
    }
    let corrupt = |what: &str| EventsError::Corrupt(format!("state {what}"));
    let payload = RsvpsChanged {
        event_id: state.event_id.clone(),
        original_local: original.to_owned(),
        changes,
    };
    let event = NewEvent::new(
        "RsvpsChanged",
        state
            .network_id
            .parse()
            .map_err(|_| corrupt("network_id"))?,
        &caller.actor,
        payload.encode_to_vec(),
    )
    .with_site(state.site_id.parse().map_err(|_| corrupt("site_id"))?)
    .with_traceparent(caller.traceparent.clone());
    anp_eventstore::append_in(
        tx,
        &stream_of(&state.event_id),
        ExpectedVersion::Any,
        &[event],
    )
    .await?;
    apply(tx, &payload, &state.network_id).await
}

async fn apply<C: GenericClient>(
    tx: &C,
    changed: &RsvpsChanged,
    network_id: &str,
) -> Result<(), EventsError> {
    let corrupt = |what: &str| EventsError::Corrupt(format!("rsvp {what}"));
    let event_id: Uuid = changed.event_id.parse().map_err(|_| corrupt("event_id"))?;
    let network_id: Uuid = network_id.parse().map_err(|_| corrupt("network_id"))?;
    for change in &changed.changes {
        let account_id: Uuid = change.account_id.parse().map_err(|_| corrupt("account"))?;
        if change.status == "withdrawn" {
            tx.execute(
                "DELETE FROM calendar_rsvps \
                 WHERE event_id = $1 AND original_local = $2 AND account_id = $3",
                &[&event_id, &changed.original_local, &account_id],
            )
            .await?;
            continue;
        }
        tx.execute(
            "INSERT INTO calendar_rsvps \
               (event_id, original_local, account_id, status, at, network_id, display_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (event_id, original_local, account_id) DO UPDATE SET \
               status = EXCLUDED.status, at = EXCLUDED.at, display_name = EXCLUDED.display_name",
            &[
                &event_id,
                &changed.original_local,
                &account_id,
                &change.status,
                &anp_kit::from_timestamp(change.at.as_ref()),
                &network_id,
                &change.display_name,
            ],
        )
        .await?;
    }
    Ok(())
}

/// The table's side of an imported `RsvpsChanged`.
pub(crate) async fn write_rows(
    tx: &tokio_postgres::Transaction<'_>,
    event: &RecordedEvent,
) -> Result<(), EventsError> {
    let changed = RsvpsChanged::decode(event.payload.as_slice())
        .map_err(|err| EventsError::Corrupt(format!("{}: {err}", event.event_id)))?;
    apply(tx, &changed, &event.network_id.to_string()).await
}

/// After the capacity grew: every occurrence's waitlist moves up, in `tx`.
pub(crate) async fn promote_all<C: GenericClient>(
    tx: &C,
    state: &CalendarEventState,
    caller: &Caller,
) -> Result<(), EventsError> {
    let event_id: Uuid = state
        .event_id
        .parse()
        .map_err(|_| EventsError::Corrupt("state event_id".into()))?;
    let rows = tx
        .query(
            "SELECT DISTINCT original_local FROM calendar_rsvps \
             WHERE event_id = $1 AND status = 'waitlisted'",
            &[&event_id],
        )
        .await?;
    let now = Utc::now();
    for row in &rows {
        let original: String = row.get(0);
        let changes = promotions(tx, event_id, &original, state.capacity, now).await?;
        record(tx, state, &original, changes, caller).await?;
    }
    Ok(())
}

impl Calendar {
    /// A signed-in account answers for one occurrence.
    pub async fn rsvp(
        &self,
        request: &RsvpRequest,
        caller: Caller,
        token: &str,
    ) -> Result<RsvpSummary, EventsError> {
        let (state, _) = self.load(&request.event_id).await?;
        let original = occurrence_key(&state, &request.original_local)?;
        let account = self
            .who_am_i(token)
            .await?
            .ok_or_else(|| EventsError::Denied("authorization: sign in to answer".into()))?;
        let account_id: Uuid = account
            .id
            .parse()
            .map_err(|_| EventsError::Sites(tonic::Status::internal("bad account id")))?;
        let event_id: Uuid = state
            .event_id
            .parse()
            .map_err(|_| EventsError::Corrupt("state event_id".into()))?;
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        // One decision at a time per event: the last place is given once.
        tx.execute(
            "SELECT 1 FROM calendar_events WHERE event_id = $1 FOR UPDATE",
            &[&event_id],
        )
        .await?;
        let now = Utc::now();
        let current = status_of(&*tx, event_id, &original, account_id).await?;
        let mut changes = Vec::new();
        match (request.going, current) {
            (true, None) => {
                let going = going_count(&*tx, event_id, &original).await?;
                let status = if state.capacity == 0 || going < state.capacity {
                    "going"
                } else {
                    "waitlisted"
                };
                changes.push(RsvpChange {
                    account_id: account_id.to_string(),
                    status: status.into(),
                    at: Some(anp_kit::timestamp(now)),
                    display_name: account.display_name.clone(),
                });
            }
            (false, Some((status, _))) => {
                changes.push(RsvpChange {
                    account_id: account_id.to_string(),
                    status: "withdrawn".into(),
                    at: Some(anp_kit::timestamp(now)),
                    display_name: String::new(),
                });
                if status == "going" {
                    // The place is free once this withdrawal is applied.
                    record(
                        &*tx,
                        &state,
                        &original,
                        std::mem::take(&mut changes),
                        &caller,
                    )
                    .await?;
                    changes = promotions(&*tx, event_id, &original, state.capacity, now).await?;
                }
            }
            // Saying the same again changes nothing.
            (true, Some(_)) | (false, None) => {}
        }
        record(&*tx, &state, &original, changes, &caller).await?;
        tx.commit().await?;
        // Never hold a pooled connection while asking for another.
        drop(client);
        self.summary(&state, &original, Some(account_id), token)
            .await
    }

    /// Counts, the caller's answer, and names for the hosts' editors.
    pub async fn get_rsvps(
        &self,
        request: &GetRsvpsRequest,
        token: Option<&str>,
    ) -> Result<RsvpSummary, EventsError> {
        let (state, _) = self.load(&request.event_id).await?;
        let original = if request.original_local.is_empty() {
            if !state.rrule.is_empty() {
                return Err(invalid(
                    "original_local: which occurrence of this recurring event",
                ));
            }
            state.start_local.clone()
        } else {
            local_text(parse_local("original_local", &request.original_local)?)
        };
        let account_id = match token {
            Some(token) => self
                .who_am_i(token)
                .await?
                .and_then(|account| account.id.parse().ok()),
            None => None,
        };
        self.summary(&state, &original, account_id, token.unwrap_or(""))
            .await
    }

    async fn who_am_i(
        &self,
        token: &str,
    ) -> Result<Option<anp_proto::sites::v1::Account>, EventsError> {
        let mut request = tonic::Request::new(anp_proto::sites::v1::WhoAmIRequest {});
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| invalid("authorization: malformed token"))?;
        request.metadata_mut().insert("authorization", value);
        match self.sites.clone().who_am_i(request).await {
            Ok(response) => Ok(response.into_inner().account),
            Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(None),
            Err(status) => Err(EventsError::Sites(status)),
        }
    }

    /// Whether the token is an editor of a site hosting the event.
    async fn edits_a_host(&self, state: &CalendarEventState, token: &str) -> bool {
        if token.is_empty() {
            return false;
        }
        let sites = std::iter::once(state.site_id.clone()).chain(
            state
                .hosts
                .iter()
                .filter(|host| host.status == "accepted")
                .map(|host| host.site_id.clone()),
        );
        for site_id in sites {
            let scope = Scope {
                site_id,
                ..Default::default()
            };
            if let Ok(access) = self.access(Some(token), scope).await
                && Role::try_from(access.role).unwrap_or(Role::Unspecified) >= Role::Editor
            {
                return true;
            }
        }
        false
    }

    async fn summary(
        &self,
        state: &CalendarEventState,
        original: &str,
        account_id: Option<Uuid>,
        token: &str,
    ) -> Result<RsvpSummary, EventsError> {
        let event_id: Uuid = state
            .event_id
            .parse()
            .map_err(|_| EventsError::Corrupt("state event_id".into()))?;
        let client = self.store.pool().get().await?;
        let counts = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'going'), \
                        count(*) FILTER (WHERE status = 'waitlisted') \
                 FROM calendar_rsvps WHERE event_id = $1 AND original_local = $2",
                &[&event_id, &original],
            )
            .await?;
        let mut summary = RsvpSummary {
            event_id: state.event_id.clone(),
            original_local: original.to_owned(),
            capacity: state.capacity,
            going: counts.get::<_, i64>(0) as u32,
            waitlisted: counts.get::<_, i64>(1) as u32,
            ..Default::default()
        };
        if let Some(account_id) = account_id
            && let Some((status, at)) = status_of(&**client, event_id, original, account_id).await?
        {
            if status == "waitlisted" {
                let ahead = client
                    .query_one(
                        "SELECT count(*) FROM calendar_rsvps WHERE event_id = $1 \
                         AND original_local = $2 AND status = 'waitlisted' \
                         AND (at, account_id) < ($3, $4)",
                        &[&event_id, &original, &at, &account_id],
                    )
                    .await?;
                summary.my_waitlist_position = ahead.get::<_, i64>(0) as u32 + 1;
            }
            summary.my_status = status;
        }
        if self.edits_a_host(state, token).await {
            let rows = client
                .query(
                    "SELECT account_id, display_name, status, at FROM calendar_rsvps \
                     WHERE event_id = $1 AND original_local = $2 \
                     ORDER BY status, at, account_id LIMIT $3",
                    &[&event_id, &original, &ATTENDEES_MAX],
                )
                .await?;
            summary.attendees = rows
                .iter()
                .map(|row| Attendee {
                    account_id: row.get::<_, Uuid>(0).to_string(),
                    display_name: row.get(1),
                    status: row.get(2),
                    at: Some(anp_kit::timestamp(row.get(3))),
                })
                .collect();
        }
        Ok(summary)
    }
}
