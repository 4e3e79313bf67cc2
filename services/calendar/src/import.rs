//! Reading events out of an iCalendar file (RFC 5545), as other calendar
//! apps write them: VEVENTs with DTSTART in a time zone (TZID), in UTC, or
//! floating, or a DATE for all-day events; DTEND or DURATION; RRULE with
//! EXDATE; overrides of single occurrences (RECURRENCE-ID); STATUS;
//! LOCATION, GEO and URL. What cannot be taken over is reported per event,
//! and the rest of the file still comes in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use icalendar::parser::{Component, Property, read_calendar, unfold};

use crate::CalendarError;
use crate::schedule::{Exception, Schedule, to_utc};

/// Components nest at most this deep (VCALENDAR > VEVENT > VALARM is 3).
const DEPTH_MAX: usize = 8;
/// Occurrence overrides of one series at most.
const OVERRIDES_MAX: usize = 500;

/// One event of the file, ready to be scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEvent {
    pub uid: String,
    pub summary: String,
    pub description: String,
    pub location: String,
    pub url: String,
    pub geo: Option<(f64, f64)>,
    pub schedule: Schedule,
    pub cancelled: bool,
}

/// What a file holds: its events, and a note for each thing left out.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub events: Vec<ImportedEvent>,
    pub notes: Vec<String>,
}

fn invalid(message: impl Into<String>) -> CalendarError {
    CalendarError::Invalid(message.into())
}

/// Checks the nesting of BEGIN/END before the parser sees the text.
fn check_depth(text: &str) -> Result<(), CalendarError> {
    let mut depth = 0usize;
    for line in text.lines() {
        let upper = line.trim_end().to_ascii_uppercase();
        if upper.starts_with("BEGIN:") {
            depth += 1;
            if depth > DEPTH_MAX {
                return Err(invalid(format!(
                    "text: components nest deeper than {DEPTH_MAX}"
                )));
            }
        } else if upper.starts_with("END:") {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

fn param<'a>(property: &'a Property<'_>, key: &str) -> Option<&'a str> {
    property
        .params
        .iter()
        .find(|p| p.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

fn prop<'a>(component: &'a Component<'_>, name: &str) -> Option<&'a Property<'a>> {
    component
        .properties
        .iter()
        .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
}

fn text_of(component: &Component<'_>, name: &str) -> String {
    prop(component, name)
        .map(|p| p.val.clone().unescape_text().as_str().trim().to_owned())
        .unwrap_or_default()
}

/// A DATE or DATE-TIME value as local time in the event's zone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    Date(NaiveDate),
    Local(NaiveDateTime),
    Utc(DateTime<Utc>),
}

fn parse_when(value: &str, is_date: bool) -> Option<When> {
    let value = value.trim();
    if is_date || value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()
            .map(When::Date);
    }
    if let Some(utc) = value.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .ok()
            .map(|at| When::Utc(at.and_utc()));
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .ok()
        .map(When::Local)
}

/// The zone of a property's TZID, when it names an IANA zone.
fn zone_of(property: &Property<'_>) -> Result<Option<Tz>, String> {
    match param(property, "TZID") {
        None => Ok(None),
        Some(tzid) => tzid
            .trim_start_matches('/')
            .parse::<Tz>()
            .map(Some)
            .map_err(|_| tzid.to_owned()),
    }
}

fn local_in(tz: Tz, when: When) -> NaiveDateTime {
    match when {
        When::Date(date) => date.and_hms_opt(0, 0, 0).unwrap_or_default(),
        When::Local(local) => local,
        When::Utc(at) => at.with_timezone(&tz).naive_local(),
    }
}

/// An RFC 5545 DURATION such as `PT1H30M`, `P1D`, `-PT15M` or `P2W`.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (negative, rest) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let rest = rest.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut in_time = false;
    let mut parts = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() => in_time = true,
            _ => {
                let n: i64 = number.parse().ok().filter(|n| *n <= 100_000)?;
                number.clear();
                parts += 1;
                total += match (c, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return None,
                };
            }
        }
    }
    if !number.is_empty() || parts == 0 {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// Reads the events of an iCalendar text. Times without a zone (floating)
/// and in UTC are taken in `default_tz`; a TZID that is not an IANA zone
/// (e.g. Windows names) is too, with a note. At most `max_events` series.
pub fn parse_ics(text: &str, default_tz: Tz, max_events: usize) -> Result<Imported, CalendarError> {
    check_depth(text)?;
    let unfolded = unfold(text);
    let calendar = read_calendar(&unfolded).map_err(|err| {
        invalid(format!(
            "text: not an iCalendar file ({})",
            err.lines().nth(1).unwrap_or("").trim()
        ))
    })?;
    let vevents: Vec<&Component<'_>> = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT"))
        .collect();
    if vevents.is_empty() && !unfolded.to_ascii_uppercase().contains("BEGIN:VCALENDAR") {
        return Err(invalid("text: not an iCalendar file (no VCALENDAR)"));
    }
    let mut imported = Imported::default();
    // Series first, in file order; then their overrides.
    let mut order: Vec<String> = Vec::new();
    let mut masters: BTreeMap<String, &Component<'_>> = BTreeMap::new();
    let mut overrides: BTreeMap<String, Vec<&Component<'_>>> = BTreeMap::new();
    for vevent in vevents {
        let uid = text_of(vevent, "UID");
        if uid.is_empty() || uid.chars().count() > 500 {
            imported.notes.push(format!(
                "event {:?}: skipped, it has no UID (or one over 500 characters)",
                text_of(vevent, "SUMMARY")
                    .chars()
                    .take(80)
                    .collect::<String>()
            ));
            continue;
        }
        if prop(vevent, "RECURRENCE-ID").is_some() {
            overrides.entry(uid).or_default().push(vevent);
        } else if masters.insert(uid.clone(), vevent).is_none() {
            order.push(uid);
        }
    }
    for uid in order {
        if imported.events.len() >= max_events {
            imported.notes.push(format!(
                "the file has more than {max_events} events; the rest were left out"
            ));
            break;
        }
        let master = masters[&uid];
        let changes = overrides.remove(&uid).unwrap_or_default();
        match read_event(&uid, master, &changes, default_tz, &mut imported.notes) {
            Ok(event) => imported.events.push(event),
            Err(note) => imported
                .notes
                .push(format!("event {uid:?}: skipped, {note}")),
        }
    }
    for uid in overrides.keys() {
        imported.notes.push(format!(
            "event {uid:?}: a changed occurrence without its series was left out"
        ));
    }
    Ok(imported)
}

fn read_event(
    uid: &str,
    vevent: &Component<'_>,
    overrides: &[&Component<'_>],
    default_tz: Tz,
    notes: &mut Vec<String>,
) -> Result<ImportedEvent, String> {
    let start_prop = prop(vevent, "DTSTART").ok_or("DTSTART: missing")?;
    let all_day = param(start_prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let tz = match zone_of(start_prop) {
        Ok(tz) => tz.unwrap_or(default_tz),
        Err(tzid) => {
            notes.push(format!(
                "event {uid:?}: time zone {tzid:?} is not an IANA zone, taken as {}",
                default_tz.name()
            ));
            default_tz
        }
    };
    let start_when = parse_when(start_prop.val.as_str(), all_day)
        .ok_or_else(|| format!("DTSTART: {:?} is not a date-time", start_prop.val.as_str()))?;
    let all_day = all_day || matches!(start_when, When::Date(_));
    let start = local_in(tz, start_when);
    let duration = if let Some(end_prop) = prop(vevent, "DTEND") {
        let end_when = parse_when(end_prop.val.as_str(), all_day)
            .ok_or_else(|| format!("DTEND: {:?} is not a date-time", end_prop.val.as_str()))?;
        let end_tz = zone_of(end_prop).ok().flatten().unwrap_or(tz);
        match (start_when, end_when) {
            (When::Date(_), _) | (_, When::Date(_)) => local_in(tz, end_when) - start,
            _ => {
                let end = match end_when {
                    When::Utc(at) => at,
                    other => to_utc(end_tz, local_in(end_tz, other)),
                };
                end - to_utc(tz, start)
            }
        }
    } else if let Some(duration) = prop(vevent, "DURATION") {
        parse_duration(duration.val.as_str())
            .ok_or_else(|| format!("DURATION: {:?} is not a duration", duration.val.as_str()))?
    } else if all_day {
        Duration::days(1)
    } else {
        // RFC 5545 gives it no length; an hour is what people mean.
        Duration::hours(1)
    };
    let rrule = prop(vevent, "RRULE").map(|p| p.val.as_str().trim().to_owned());
    let mut exceptions = BTreeMap::new();
    for exdate in vevent
        .properties
        .iter()
        .filter(|p| p.name.as_str().eq_ignore_ascii_case("EXDATE"))
    {
        let ex_tz = zone_of(exdate).ok().flatten().unwrap_or(tz);
        for value in exdate.val.as_str().split(',') {
            let when = parse_when(value, all_day)
                .ok_or_else(|| format!("EXDATE: {value:?} is not a date-time"))?;
            let at = match when {
                When::Utc(at) => at.with_timezone(&tz).naive_local(),
                other => {
                    let local = local_in(ex_tz, other);
                    to_utc(ex_tz, local).with_timezone(&tz).naive_local()
                }
            };
            exceptions.insert(at, Exception::Cancelled);
        }
    }
    for changed in overrides.iter().take(OVERRIDES_MAX) {
        let Some(recurrence) = prop(changed, "RECURRENCE-ID") else {
            continue;
        };
        let Some(original) = parse_when(recurrence.val.as_str(), all_day) else {
            notes.push(format!(
                "event {uid:?}: a RECURRENCE-ID that is not a date-time"
            ));
            continue;
        };
        let original = match original {
            When::Utc(at) => at.with_timezone(&tz).naive_local(),
            other => {
                let rz = zone_of(recurrence).ok().flatten().unwrap_or(tz);
                to_utc(rz, local_in(rz, other))
                    .with_timezone(&tz)
                    .naive_local()
            }
        };
        if text_of(changed, "STATUS").eq_ignore_ascii_case("CANCELLED") {
            exceptions.insert(original, Exception::Cancelled);
            continue;
        }
        let moved = read_event(uid, changed, &[], tz, notes)?;
        let moved_start = to_utc(moved.schedule.tz, moved.schedule.start)
            .with_timezone(&tz)
            .naive_local();
        exceptions.insert(
            original,
            Exception::Moved {
                start: if all_day {
                    moved.schedule.start
                } else {
                    moved_start
                },
                duration: moved.schedule.duration,
            },
        );
    }
    let geo = prop(vevent, "GEO").and_then(|p| {
        let (lat, lon) = p.val.as_str().split_once([';', ','])?;
        Some((lat.trim().parse().ok()?, lon.trim().parse().ok()?))
    });
    let schedule = Schedule {
        tz,
        start,
        duration,
        all_day,
        rrule,
        exceptions,
    };
    schedule.check().map_err(|err| err.to_string())?;
    Ok(ImportedEvent {
        uid: uid.to_owned(),
        summary: text_of(vevent, "SUMMARY"),
        description: text_of(vevent, "DESCRIPTION"),
        location: text_of(vevent, "LOCATION"),
        url: text_of(vevent, "URL"),
        geo,
        schedule,
        cancelled: text_of(vevent, "STATUS").eq_ignore_ascii_case("CANCELLED"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ics::{IcsEvent, calendar};

    fn madrid() -> Tz {
        "Europe/Madrid".parse().unwrap()
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn what_other_apps_write_comes_in() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\n\
BEGIN:VEVENT\r\nUID:weekly@other\r\nDTSTAMP:20261101T000000Z\r\n\
DTSTART;TZID=America/New_York:20261020T190000\r\nDTEND;TZID=America/New_York:20261020T210000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=6\r\nEXDATE;TZID=America/New_York:20261027T190000\r\n\
SUMMARY:Vigil\\, weekly\r\nDESCRIPTION:Bring candles\\nand friends\r\n\
LOCATION:Plaza\r\nGEO:40.7;-74.0\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:weekly@other\r\nRECURRENCE-ID;TZID=America/New_York:20261103T190000\r\n\
DTSTART;TZID=America/New_York:20261104T180000\r\nDURATION:PT1H30M\r\nSUMMARY:Vigil (moved)\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:allday@other\r\nDTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20261203\r\n\
SUMMARY:Assembly\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:utc@other\r\nDTSTART:20261201T170000Z\r\nDURATION:PT2H\r\nSUMMARY:Call\r\n\
STATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:windows@other\r\nDTSTART;TZID=W. Europe Standard Time:20261205T100000\r\n\
SUMMARY:Outlook\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nSUMMARY:No uid\r\nDTSTART:20261201T170000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:bad@other\r\nDTSTART:tomorrow\r\nSUMMARY:Bad\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let imported = parse_ics(text, madrid(), 100).unwrap();
        let uids: Vec<&str> = imported.events.iter().map(|e| e.uid.as_str()).collect();
        assert_eq!(
            uids,
            ["weekly@other", "allday@other", "utc@other", "windows@other"]
        );
        let weekly = &imported.events[0];
        assert_eq!(weekly.summary, "Vigil, weekly");
        assert_eq!(weekly.description, "Bring candles\nand friends");
        assert_eq!(weekly.geo, Some((40.7, -74.0)));
        assert_eq!(weekly.schedule.tz.name(), "America/New_York");
        assert_eq!(weekly.schedule.start, at("2026-10-20 19:00"));
        assert_eq!(weekly.schedule.duration, Duration::hours(2));
        assert_eq!(
            weekly.schedule.exceptions.get(&at("2026-10-27 19:00")),
            Some(&Exception::Cancelled)
        );
        assert_eq!(
            weekly.schedule.exceptions.get(&at("2026-11-03 19:00")),
            Some(&Exception::Moved {
                start: at("2026-11-04 18:00"),
                duration: Duration::minutes(90)
            })
        );
        let all_day = &imported.events[1];
        assert!(all_day.schedule.all_day);
        assert_eq!(all_day.schedule.duration, Duration::days(2));
        let utc = &imported.events[2];
        assert!(utc.cancelled);
        assert_eq!(utc.schedule.tz, madrid());
        assert_eq!(
            utc.schedule.start,
            at("2026-12-01 18:00"),
            "17:00Z in Madrid"
        );
        let windows = &imported.events[3];
        assert_eq!(windows.schedule.tz, madrid());
        assert_eq!(windows.schedule.duration, Duration::hours(1));
        let notes = imported.notes.join("\n");
        for expected in [
            "no UID",
            "W. Europe Standard Time",
            "\"bad@other\": skipped, DTSTART",
        ] {
            assert!(notes.contains(expected), "{expected} in {notes}");
        }
    }

    #[test]
    fn our_own_export_reads_back_the_same() {
        let schedule = Schedule {
            tz: "America/Chicago".parse().unwrap(),
            start: at("2026-10-20 19:00"),
            duration: Duration::hours(2),
            all_day: false,
            rrule: Some("FREQ=WEEKLY;BYDAY=TU;COUNT=8".into()),
            exceptions: BTreeMap::from([
                (at("2026-10-27 19:00"), Exception::Cancelled),
                (
                    at("2026-11-03 19:00"),
                    Exception::Moved {
                        start: at("2026-11-05 18:30"),
                        duration: Duration::hours(1),
                    },
                ),
            ]),
        };
        let text = calendar(
            "test",
            &[IcsEvent {
                uid: "round@anp".into(),
                summary: "Clinic; know your rights",
                description: "Line one\nLine two, with comma",
                location: "Library",
                url: "https://example.org/x",
                geo: Some((41.88, -87.63)),
                schedule: &schedule,
                sequence: 2,
                cancelled: false,
                stamp: Utc::now(),
            }],
        );
        let imported = parse_ics(&text, madrid(), 10).unwrap();
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let event = &imported.events[0];
        assert_eq!(event.schedule, schedule);
        assert_eq!(event.summary, "Clinic; know your rights");
        assert_eq!(event.description, "Line one\nLine two, with comma");
        assert_eq!(event.url, "https://example.org/x");
    }

    #[test]
    fn hostile_files_are_refused_or_cut() {
        let deep = "BEGIN:VCALENDAR\n".repeat(10_000);
        let err = parse_ics(&deep, madrid(), 10).unwrap_err().to_string();
        assert!(err.starts_with("text: components nest deeper"), "{err}");
        let err = parse_ics("hello", madrid(), 10).unwrap_err().to_string();
        assert!(err.starts_with("text: not an iCalendar file"), "{err}");
        let mut many = String::from("BEGIN:VCALENDAR\r\n");
        for i in 0..20 {
            many.push_str(&format!(
                "BEGIN:VEVENT\r\nUID:{i}\r\nDTSTART:20261201T170000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
            ));
        }
        many.push_str("END:VCALENDAR\r\n");
        let imported = parse_ics(&many, madrid(), 5).unwrap();
        assert_eq!(imported.events.len(), 5);
        assert!(imported.notes[0].contains("more than 5 events"));
        let hourly = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:h\r\nDTSTART:20261201T170000Z\r\n\
RRULE:FREQ=MINUTELY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let imported = parse_ics(hourly, madrid(), 5).unwrap();
        assert!(imported.events.is_empty());
        assert!(imported.notes[0].contains("rrule"), "{:?}", imported.notes);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(parse_duration("P2W"), Some(Duration::weeks(2)));
        assert_eq!(parse_duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(parse_duration("P1DT2H"), Some(Duration::hours(26)));
        for bad in ["", "P", "1H", "PT1X", "PT99999999999H", "PT1"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
