//! When an event happens: a local start in an IANA time zone, a duration,
//! an optional RRULE, and exceptions by original start.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::RRuleSet;

use crate::CalendarError;

/// Occurrences one expansion returns at most.
pub const EXPANSION_MAX: u16 = 1000;
/// The longest event.
pub const DURATION_MAX_DAYS: i64 = 31;

/// What happened to one occurrence, by its original local start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exception {
    Cancelled,
    Moved {
        start: NaiveDateTime,
        duration: Duration,
    },
}

/// An event's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub tz: Tz,
    /// Local wall time (midnight for all-day events).
    pub start: NaiveDateTime,
    pub duration: Duration,
    pub all_day: bool,
    /// The RRULE value, e.g. `FREQ=WEEKLY;BYDAY=TU;COUNT=10`.
    pub rrule: Option<String>,
    pub exceptions: BTreeMap<NaiveDateTime, Exception>,
}

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Its place in the series: the local start the rule gives it.
    pub original: NaiveDateTime,
    /// Where it is now (moved occurrences differ from `original`).
    pub local_start: NaiveDateTime,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cancelled: bool,
}

fn invalid(message: impl Into<String>) -> CalendarError {
    CalendarError::Invalid(message.into())
}

/// An IANA time zone by name (`time_zone` field).
pub fn parse_tz(name: &str) -> Result<Tz, CalendarError> {
    name.parse::<Tz>()
        .map_err(|_| invalid(format!("time_zone: {name:?} is not an IANA time zone")))
}

/// The UTC instant of a local time; in a daylight-saving gap, the first
/// instant after it; in an overlap, the first of the two.
pub fn to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..4 {
        if let Some(at) = tz.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

impl Schedule {
    /// Checks the schedule: a positive duration of at most a month, a rule
    /// that parses, no more often than daily, and bounded or open-ended.
    pub fn check(&self) -> Result<(), CalendarError> {
        if self.duration <= Duration::zero() && !self.all_day {
            return Err(invalid("end: must be after start"));
        }
        if self.duration > Duration::days(DURATION_MAX_DAYS) {
            return Err(invalid(format!(
                "end: an event lasts at most {DURATION_MAX_DAYS} days"
            )));
        }
        if let Some(rule) = &self.rrule {
            if rule.len() > 500 || rule.contains(['\r', '\n']) {
                return Err(invalid("rrule: at most 500 characters on one line"));
            }
            let upper = rule.to_ascii_uppercase();
            for too_often in ["FREQ=SECONDLY", "FREQ=MINUTELY", "FREQ=HOURLY"] {
                if upper.contains(too_often) {
                    return Err(invalid(format!(
                        "rrule: {too_often} is too often for an event (daily at most)"
                    )));
                }
            }
            self.rule_set()?;
        }
        Ok(())
    }

    fn rule_set(&self) -> Result<RRuleSet, CalendarError> {
        let rule = self.rrule.as_deref().unwrap_or("FREQ=DAILY;COUNT=1");
        let text = format!(
            "DTSTART;TZID={}:{}\nRRULE:{rule}",
            self.tz.name(),
            self.start.format("%Y%m%dT%H%M%S")
        );
        text.parse::<RRuleSet>()
            .map_err(|err| invalid(format!("rrule: {err}")))
    }

    /// When its last occurrence ends, or `None` for a series without end
    /// (or with more than [`EXPANSION_MAX`] occurrences).
    pub fn last_end(&self) -> Result<Option<DateTime<Utc>>, CalendarError> {
        let result = self.rule_set()?.all(EXPANSION_MAX);
        if result.limited {
            return Ok(None);
        }
        let (Some(first), Some(last)) = (result.dates.first(), result.dates.last()) else {
            return Ok(Some(to_utc(self.tz, self.start)));
        };
        let from = to_utc(self.tz, first.naive_local()) - Duration::days(1);
        let to = to_utc(self.tz, last.naive_local()) + Duration::days(DURATION_MAX_DAYS + 1);
        // Moved occurrences may end later than the last one of the rule.
        let moved_until = self
            .exceptions
            .values()
            .filter_map(|exception| match exception {
                Exception::Moved { start, .. } => Some(to_utc(self.tz, *start)),
                Exception::Cancelled => None,
            })
            .max()
            .map_or(to, |latest| {
                latest.max(to) + Duration::days(DURATION_MAX_DAYS + 1)
            });
        Ok(self
            .occurrences(from, moved_until)?
            .iter()
            .map(|occurrence| occurrence.end)
            .max())
    }

    /// The occurrences that overlap `[from, to)`, in order, at most
    /// [`EXPANSION_MAX`]; cancelled ones are kept (marked), moved ones are
    /// where they were moved to.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Occurrence>, CalendarError> {
        let rz = rrule::Tz::Tz(self.tz);
        // Starts from one duration before `from`, so an occurrence already
        // running at `from` is in.
        let earliest = from - self.duration - Duration::days(1);
        let result = self
            .rule_set()?
            .after(earliest.with_timezone(&rz))
            .before(to.with_timezone(&rz))
            .all(EXPANSION_MAX);
        let mut occurrences = Vec::with_capacity(result.dates.len());
        for date in result.dates {
            let original = date.naive_local();
            let (local_start, duration, cancelled) = match self.exceptions.get(&original) {
                Some(Exception::Cancelled) => (original, self.duration, true),
                Some(Exception::Moved { start, duration }) => (*start, *duration, false),
                None => (original, self.duration, false),
            };
            let start = to_utc(self.tz, local_start);
            let end = if self.all_day {
                to_utc(self.tz, local_start + duration.max(Duration::days(1)))
            } else {
                start + duration
            };
            if end > from && start < to {
                occurrences.push(Occurrence {
                    original,
                    local_start,
                    start,
                    end,
                    cancelled,
                });
            }
        }
        occurrences.sort_by_key(|occurrence| occurrence.start);
        Ok(occurrences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&local(y, m, d, h, min))
    }

    fn weekly_in_new_york() -> Schedule {
        Schedule {
            tz: parse_tz("America/New_York").unwrap(),
            // Tuesdays 19:00, across the end of daylight saving (1 Nov 2026).
            start: local(2026, 10, 20, 19, 0),
            duration: Duration::hours(2),
            all_day: false,
            rrule: Some("FREQ=WEEKLY;BYDAY=TU;COUNT=4".into()),
            exceptions: BTreeMap::new(),
        }
    }

    #[test]
    fn series_end_where_their_last_occurrence_ends() {
        let mut schedule = weekly_in_new_york();
        // Fourth Tuesday: 10 Nov 2026, 19:00 EST = 00:00 UTC, two hours.
        assert_eq!(schedule.last_end().unwrap(), Some(utc(2026, 11, 11, 2, 0)));
        schedule.exceptions.insert(
            local(2026, 11, 10, 19, 0),
            Exception::Moved {
                start: local(2026, 12, 1, 18, 0),
                duration: Duration::hours(1),
            },
        );
        assert_eq!(schedule.last_end().unwrap(), Some(utc(2026, 12, 2, 0, 0)));
        schedule.rrule = Some("FREQ=WEEKLY;BYDAY=TU".into());
        assert_eq!(schedule.last_end().unwrap(), None, "no end");
        schedule.rrule = None;
        schedule.exceptions.clear();
        assert_eq!(schedule.last_end().unwrap(), Some(utc(2026, 10, 21, 1, 0)));
    }

    #[test]
    fn a_weekly_event_keeps_its_local_time_across_daylight_saving() {
        let schedule = weekly_in_new_york();
        schedule.check().unwrap();
        let all = schedule
            .occurrences(utc(2026, 10, 1, 0, 0), utc(2027, 1, 1, 0, 0))
            .unwrap();
        let locals: Vec<NaiveDateTime> = all.iter().map(|o| o.local_start).collect();
        assert_eq!(
            locals,
            vec![
                local(2026, 10, 20, 19, 0),
                local(2026, 10, 27, 19, 0),
                local(2026, 11, 3, 19, 0),
                local(2026, 11, 10, 19, 0)
            ]
        );
        // 19:00 EDT is 23:00 UTC; 19:00 EST is 00:00 UTC the next day.
        assert_eq!(all[1].start, utc(2026, 10, 27, 23, 0));
        assert_eq!(all[2].start, utc(2026, 11, 4, 0, 0));
        assert_eq!(all[2].end, utc(2026, 11, 4, 2, 0));
    }

    #[test]
    fn exceptions_cancel_and_move_single_occurrences() {
        let mut schedule = weekly_in_new_york();
        schedule
            .exceptions
            .insert(local(2026, 10, 27, 19, 0), Exception::Cancelled);
        schedule.exceptions.insert(
            local(2026, 11, 3, 19, 0),
            Exception::Moved {
                start: local(2026, 11, 5, 18, 0),
                duration: Duration::hours(1),
            },
        );
        let all = schedule
            .occurrences(utc(2026, 10, 1, 0, 0), utc(2027, 1, 1, 0, 0))
            .unwrap();
        assert_eq!(all.len(), 4);
        assert!(all[1].cancelled);
        assert_eq!(all[2].original, local(2026, 11, 3, 19, 0));
        assert_eq!(all[2].local_start, local(2026, 11, 5, 18, 0));
        assert_eq!(all[2].end - all[2].start, Duration::hours(1));
    }

    #[test]
    fn windows_cut_open_ended_series() {
        let mut schedule = weekly_in_new_york();
        schedule.rrule = Some("FREQ=DAILY".into());
        let week = schedule
            .occurrences(utc(2026, 11, 1, 0, 0), utc(2026, 11, 8, 0, 0))
            .unwrap();
        assert_eq!(week.len(), 7);
        // Running at the window's start counts.
        let running = schedule
            .occurrences(utc(2026, 10, 21, 0, 30), utc(2026, 10, 21, 0, 31))
            .unwrap();
        assert_eq!(running.len(), 1);
    }

    #[test]
    fn bad_schedules_name_the_field() {
        assert!(
            parse_tz("Mars/Olympus")
                .unwrap_err()
                .to_string()
                .contains("time_zone")
        );
        let mut schedule = weekly_in_new_york();
        schedule.rrule = Some("FREQ=SECONDLY".into());
        assert!(schedule.check().unwrap_err().to_string().contains("rrule"));
        schedule.rrule = Some("FREQ=WEEKLY;BYDAY=XX".into());
        assert!(schedule.check().unwrap_err().to_string().contains("rrule"));
        schedule.rrule = None;
        schedule.duration = Duration::hours(-1);
        assert!(schedule.check().unwrap_err().to_string().contains("end"));
        schedule.duration = Duration::days(40);
        assert!(schedule.check().unwrap_err().to_string().contains("end"));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_moves_forward() {
        let tz = parse_tz("America/New_York").unwrap();
        // 8 Mar 2026, 02:30 does not exist in New York.
        assert_eq!(to_utc(tz, local(2026, 3, 8, 2, 30)), utc(2026, 3, 8, 7, 0));
    }
}
