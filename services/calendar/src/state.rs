//! The calendar event as services send it (`anp.events.v1.CalendarEventState`)
//! read as a [`Schedule`]: one reading for the events service and the
//! aggregator.

use std::collections::BTreeMap;

use anp_proto::events::v1::CalendarEventState;
use chrono::{Duration, NaiveDateTime};

use crate::CalendarError;
use crate::schedule::{Exception, Schedule, parse_tz};

const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// A local wall time, `YYYY-MM-DDTHH:MM` (seconds allowed).
pub fn parse_local(field: &str, value: &str) -> Result<NaiveDateTime, CalendarError> {
    NaiveDateTime::parse_from_str(value, LOCAL_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            CalendarError::Invalid(format!(
                "{field}: {value:?} is not a local time YYYY-MM-DDTHH:MM"
            ))
        })
}

/// A local wall time as the service writes it.
pub fn local_text(at: NaiveDateTime) -> String {
    at.format(LOCAL_FORMAT).to_string()
}

/// The schedule an event's state describes.
pub fn schedule_of(state: &CalendarEventState) -> Result<Schedule, CalendarError> {
    let tz = parse_tz(&state.time_zone)?;
    let mut exceptions = BTreeMap::new();
    for change in &state.changes {
        let original = parse_local("original_local", &change.original_local)?;
        let exception = if change.cancelled {
            Exception::Cancelled
        } else {
            Exception::Moved {
                start: parse_local("start_local", &change.start_local)?,
                duration: Duration::minutes(i64::from(change.duration_minutes)),
            }
        };
        exceptions.insert(original, exception);
    }
    Ok(Schedule {
        tz,
        start: parse_local("start_local", &state.start_local)?,
        duration: if state.all_day {
            Duration::days(i64::from(state.duration_minutes.max(1440) / 1440))
        } else {
            Duration::minutes(i64::from(state.duration_minutes))
        },
        all_day: state.all_day,
        rrule: (!state.rrule.is_empty()).then(|| state.rrule.clone()),
        exceptions,
    })
}
