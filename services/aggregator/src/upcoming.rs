//! Upcoming events, soonest first, per umbrella, network and site: the
//! occurrences of each calendar event from a day ago to a year ahead
//! (cancelled ones left out), in every timeline of its hosts. Rewritten
//! whole at each newer version of the event.

use anp_proto::aggregator::v1::UpcomingOccurrence;
use anp_proto::events::v1::CalendarEventState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use prost::Message;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::AggregatorError;
use crate::feeds::{Feeds, Scope, summarize};

/// How far ahead occurrences are projected.
pub const HORIZON_DAYS: i64 = 366;
/// An event's occurrences are projected again once they reach less than
/// this many days short of `HORIZON_DAYS` ahead.
const EXTEND_BEFORE_DAYS: i64 = 7;
/// Occurrences of one event in the timelines at most.
const OCCURRENCES_MAX: usize = 200;

/// A position in an upcoming timeline: entries strictly after it come next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpcomingCursor {
    pub starts_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub original_local: String,
}

impl UpcomingCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}|{}",
            self.starts_at.timestamp_micros(),
            self.event_id,
            self.original_local
        ))
    }

    pub fn decode(text: &str) -> Result<UpcomingCursor, AggregatorError> {
        let invalid = || AggregatorError::Invalid("cursor: malformed".into());
        if text.len() > 200 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = decoded.splitn(3, '|');
        let (Some(micros), Some(event_id), Some(original)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(UpcomingCursor {
            starts_at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?)
                .ok_or_else(invalid)?,
            event_id: event_id.parse().map_err(|_| invalid())?,
            original_local: original.to_owned(),
        })
    }
}

/// Every timeline an event is in: the umbrella, its site and network, and
/// each accepted co-host's site and network.
fn scopes_of(state: &CalendarEventState) -> Vec<(Scope, Uuid)> {
    let mut scopes = Vec::new();
    let Ok(site_id) = state.site_id.parse::<Uuid>() else {
        return scopes;
    };
    scopes.push((Scope::Umbrella, site_id));
    scopes.push((Scope::Network(state.network_slug.clone()), site_id));
    scopes.push((Scope::Site(site_id), site_id));
    for host in state.hosts.iter().filter(|host| host.status == "accepted") {
        let Ok(host_site) = host.site_id.parse::<Uuid>() else {
            continue;
        };
        for scope in [
            Scope::Network(host.network_slug.clone()),
            Scope::Site(host_site),
        ] {
            if !scopes.iter().any(|(known, _)| *known == scope) {
                scopes.push((scope, host_site));
            }
        }
    }
    scopes
}

/// Applies one calendar event at `version`, in the feeds' transaction. The
/// same version again fills in a state the row lacks (events last changed
/// before migration V12; `anpctl reindex --scope feeds` replays them).
pub async fn apply<C: GenericClient>(
    tx: &C,
    state: &CalendarEventState,
    version: u64,
    now: DateTime<Utc>,
) -> Result<(), AggregatorError> {
    let (Ok(event_id), Ok(network_id), Ok(site_id)) = (
        state.event_id.parse::<Uuid>(),
        state.network_id.parse::<Uuid>(),
        state.site_id.parse::<Uuid>(),
    ) else {
        tracing::warn!(event_id = %state.event_id, "calendar event with a bad id skipped");
        return Ok(());
    };
    let horizon = now + Duration::days(HORIZON_DAYS);
    let newer = tx
        .query_opt(
            "INSERT INTO calendar_versions (event_id, version, network_id, state, horizon) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (event_id) DO UPDATE SET version = EXCLUDED.version, \
               state = EXCLUDED.state, horizon = EXCLUDED.horizon \
             WHERE calendar_versions.version < EXCLUDED.version \
               OR (calendar_versions.version = EXCLUDED.version \
                   AND calendar_versions.state IS NULL) RETURNING 1",
            &[
                &event_id,
                &(version as i64),
                &network_id,
                &state.encode_to_vec(),
                &horizon,
            ],
        )
        .await?
        .is_some();
    if !newer {
        return Ok(());
    }
    write_occurrences(tx, state, event_id, network_id, site_id, now).await
}

/// Events whose occurrences reach less than `HORIZON_DAYS - EXTEND_BEFORE_DAYS`
/// ahead of `now` are projected again from their kept state (at most
/// `limit` of them, one transaction): a series without an end stays in the
/// upcoming timelines however long nobody edits it. How many were.
pub async fn extend_horizons(
    client: &mut tokio_postgres::Client,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, AggregatorError> {
    let tx = client.transaction().await?;
    let due = now + Duration::days(HORIZON_DAYS - EXTEND_BEFORE_DAYS);
    let rows = tx
        .query(
            "SELECT event_id, network_id, state FROM calendar_versions \
             WHERE state IS NOT NULL AND horizon < $1 \
             ORDER BY horizon LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&due, &limit],
        )
        .await?;
    let horizon = now + Duration::days(HORIZON_DAYS);
    for row in &rows {
        let event_id: Uuid = row.get(0);
        let network_id: Uuid = row.get(1);
        let bytes: Vec<u8> = row.get(2);
        tx.execute(
            "UPDATE calendar_versions SET horizon = $2, index_due = true WHERE event_id = $1",
            &[&event_id, &horizon],
        )
        .await?;
        let Ok(state) = CalendarEventState::decode(bytes.as_slice()) else {
            tracing::warn!(%event_id, "kept calendar event state unreadable; left as it is");
            continue;
        };
        let Ok(site_id) = state.site_id.parse::<Uuid>() else {
            continue;
        };
        write_occurrences(&tx, &state, event_id, network_id, site_id, now).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// Events projected again by `extend_horizons` that the search index has
/// not taken yet (at most `limit`): their ids, and the state and version of
/// those whose kept state is readable.
pub async fn due_for_index(
    client: &tokio_postgres::Client,
    limit: i64,
) -> Result<(Vec<Uuid>, Vec<(CalendarEventState, u64)>), AggregatorError> {
    let rows = client
        .query(
            "SELECT event_id, version, state FROM calendar_versions \
             WHERE index_due LIMIT $1",
            &[&limit],
        )
        .await?;
    let ids = rows.iter().map(|row| row.get(0)).collect();
    let events = rows
        .iter()
        .filter_map(|row| {
            let bytes: Vec<u8> = row.get(2);
            let version: i64 = row.get(1);
            CalendarEventState::decode(bytes.as_slice())
                .ok()
                .map(|state| (state, version as u64))
        })
        .collect();
    Ok((ids, events))
}

/// The search index has committed these events' occurrences.
pub async fn indexed(client: &tokio_postgres::Client, ids: &[Uuid]) -> Result<(), AggregatorError> {
    client
        .execute(
            "UPDATE calendar_versions SET index_due = false WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(())
}

/// Rewrites an event's occurrences in every timeline it is in, from a day
/// before `now` to `HORIZON_DAYS` after.
async fn write_occurrences<C: GenericClient>(
    tx: &C,
    state: &CalendarEventState,
    event_id: Uuid,
    network_id: Uuid,
    site_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AggregatorError> {
    tx.execute(
        "DELETE FROM event_occurrences WHERE event_id = $1",
        &[&event_id],
    )
    .await?;
    if state.status == "cancelled" {
        return Ok(());
    }
    let occurrences = match anp_calendar::state::schedule_of(state).and_then(|schedule| {
        schedule.occurrences(now - Duration::days(1), now + Duration::days(HORIZON_DAYS))
    }) {
        Ok(occurrences) => occurrences,
        Err(err) => {
            tracing::warn!(%event_id, error = %err, "calendar event without a readable schedule");
            return Ok(());
        }
    };
    let location = state
        .location
        .as_ref()
        .map(|l| {
            if l.venue.is_empty() {
                l.address.clone()
            } else if l.address.is_empty() {
                l.venue.clone()
            } else {
                format!("{}, {}", l.venue, l.address)
            }
        })
        .unwrap_or_default();
    let summary = summarize(&state.description_html);
    let insert = tx
        .prepare(
            "INSERT INTO event_occurrences (scope, event_id, original_local, starts_at, ends_at, \
               start_local, time_zone, all_day, title, summary_html, location, network_id, \
               network_slug, site_id, site_slug) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
               COALESCE((SELECT slug FROM site_names WHERE site_id = $14), $15)) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let scopes = scopes_of(state);
    for occurrence in occurrences
        .iter()
        .filter(|occurrence| !occurrence.cancelled)
        .take(OCCURRENCES_MAX)
    {
        let original = anp_calendar::state::local_text(occurrence.original);
        let start_local = anp_calendar::state::local_text(occurrence.local_start);
        for (scope, _) in &scopes {
            tx.execute(
                &insert,
                &[
                    &scope.key(),
                    &event_id,
                    &original,
                    &occurrence.start,
                    &occurrence.end,
                    &start_local,
                    &state.time_zone,
                    &state.all_day,
                    &state.title,
                    &summary,
                    &location,
                    &network_id,
                    &state.network_slug,
                    &site_id,
                    &state.site_slug,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

impl Feeds {
    /// One page of a timeline's occurrences that end after `from` and start
    /// before `to`, soonest first.
    pub async fn upcoming(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<UpcomingCursor>,
        limit: u32,
    ) -> Result<(Vec<UpcomingOccurrence>, Option<UpcomingCursor>), AggregatorError> {
        let client = self.pool().get().await?;
        let fetch = i64::from(limit) + 1;
        let after = cursor.unwrap_or(UpcomingCursor {
            starts_at: DateTime::<Utc>::UNIX_EPOCH,
            event_id: Uuid::nil(),
            original_local: String::new(),
        });
        let rows = client
            .query(
                "SELECT event_id, original_local, starts_at, ends_at, start_local, time_zone, \
                   all_day, title, summary_html, location, network_slug, site_slug \
                 FROM event_occurrences WHERE scope = $1 AND ends_at > $2 AND starts_at < $3 \
                   AND (starts_at, event_id, original_local) > ($4, $5, $6) \
                 ORDER BY starts_at, event_id, original_local LIMIT $7",
                &[
                    &scope.key(),
                    &from,
                    &to,
                    &after.starts_at,
                    &after.event_id,
                    &after.original_local,
                    &fetch,
                ],
            )
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let starts_at: DateTime<Utc> = row.get(2);
            let ends_at: DateTime<Utc> = row.get(3);
            let event_id: Uuid = row.get(0);
            let original_local: String = row.get(1);
            last = Some(UpcomingCursor {
                starts_at,
                event_id,
                original_local: original_local.clone(),
            });
            entries.push(UpcomingOccurrence {
                event_id: event_id.to_string(),
                original_local,
                start: Some(anp_kit::timestamp(starts_at)),
                end: Some(anp_kit::timestamp(ends_at)),
                start_local: row.get(4),
                time_zone: row.get(5),
                all_day: row.get(6),
                title: row.get(7),
                summary_html: row.get(8),
                location: row.get(9),
                network_slug: row.get(10),
                site_slug: row.get(11),
            });
        }
        let next = if rows.len() > limit as usize {
            last
        } else {
            None
        };
        Ok((entries, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = UpcomingCursor {
            starts_at: DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap(),
            event_id: Uuid::now_v7(),
            original_local: "2027-01-05T19:00".into(),
        };
        assert_eq!(UpcomingCursor::decode(&cursor.encode()).unwrap(), cursor);
        for garbage in ["", "!!", &URL_SAFE_NO_PAD.encode("1|x|y"), &"A".repeat(300)] {
            assert!(UpcomingCursor::decode(garbage).is_err(), "{garbage}");
        }
    }
}
