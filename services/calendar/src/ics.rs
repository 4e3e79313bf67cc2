//! iCalendar (RFC 5545) output: a VTIMEZONE for every time zone used (its
//! transitions around the events' years), a VEVENT per series with RRULE
//! and SEQUENCE, and per exception a VEVENT with RECURRENCE-ID — moved, or
//! STATUS:CANCELLED. A whole cancelled event is STATUS:CANCELLED.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use icalendar::{
    Calendar, CalendarComponent, CalendarDateTime, Component, EventLike, EventStatus, Property,
};

use crate::schedule::{Exception, Schedule};

/// Who wrote the calendar (RFC 5545 PRODID).
pub const PRODID: &str = "-//Activist Network Platform//ANP//EN";

/// One event to write.
#[derive(Debug, Clone)]
pub struct IcsEvent<'a> {
    /// Stable across versions, e.g. `<event id>@<host>`.
    pub uid: String,
    pub summary: &'a str,
    pub description: &'a str,
    pub location: &'a str,
    pub url: &'a str,
    pub geo: Option<(f64, f64)>,
    pub schedule: &'a Schedule,
    /// Bumped at every change calendar apps must notice.
    pub sequence: u32,
    pub cancelled: bool,
    pub stamp: DateTime<Utc>,
}

fn stamp(local: NaiveDateTime) -> String {
    local.format("%Y%m%dT%H%M%S").to_string()
}

fn offset_text(offset: FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.abs();
    format!("{sign}{:02}{:02}", seconds / 3600, (seconds % 3600) / 60)
}

/// The offset, whether it is daylight time, and its abbreviation, at `at`.
fn offset_at(tz: Tz, at: DateTime<Utc>) -> (FixedOffset, bool, String) {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    let name = offset
        .abbreviation()
        .map(str::to_owned)
        .unwrap_or_else(|| offset_text(offset.fix()));
    (offset.fix(), !offset.dst_offset().is_zero(), name)
}

/// A VTIMEZONE with every transition of `tz` in the years `from..=to`
/// (or one STANDARD when it has none), parsed into a calendar component.
fn vtimezone(tz: Tz, from_year: i32, to_year: i32) -> Option<CalendarComponent> {
    let mut lines = vec!["BEGIN:VTIMEZONE".to_owned(), format!("TZID:{}", tz.name())];
    let start = Utc
        .with_ymd_and_hms(from_year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let end = Utc
        .with_ymd_and_hms(to_year + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut at = start;
    let mut before = offset_at(tz, at);
    let mut transitions = 0;
    while at < end {
        let next = at + Duration::days(1);
        let after = offset_at(tz, next);
        if after.0 != before.0 || after.1 != before.1 {
            // Narrow the change down to the minute.
            let (mut low, mut high) = (at, next);
            while high - low > Duration::minutes(1) {
                let middle = low + (high - low) / 2;
                if offset_at(tz, middle).0 == before.0 {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            let kind = if after.1 { "DAYLIGHT" } else { "STANDARD" };
            // DTSTART is the local time of the change, in the offset before it.
            let onset = high.with_timezone(&before.0).naive_local();
            lines.extend([
                format!("BEGIN:{kind}"),
                format!("DTSTART:{}", stamp(onset)),
                format!("TZOFFSETFROM:{}", offset_text(before.0)),
                format!("TZOFFSETTO:{}", offset_text(after.0)),
                format!("TZNAME:{}", after.2),
                format!("END:{kind}"),
            ]);
            transitions += 1;
        }
        before = after;
        at = next;
    }
    if transitions == 0 {
        lines.extend([
            "BEGIN:STANDARD".to_owned(),
            "DTSTART:19700101T000000".to_owned(),
            format!("TZOFFSETFROM:{}", offset_text(before.0)),
            format!("TZOFFSETTO:{}", offset_text(before.0)),
            format!("TZNAME:{}", before.2),
            "END:STANDARD".to_owned(),
        ]);
    }
    lines.push("END:VTIMEZONE".to_owned());
    let text = lines.join("\r\n") + "\r\n";
    icalendar::parser::read_calendar_simple(&text)
        .ok()
        .and_then(|mut components| components.pop())
        .map(CalendarComponent::from)
}

fn when(schedule: &Schedule, local: NaiveDateTime) -> CalendarDateTime {
    CalendarDateTime::WithTimezone {
        date_time: local,
        tzid: schedule.tz.name().to_owned(),
    }
}

fn local_time_property(key: &str, schedule: &Schedule, local: NaiveDateTime) -> Property {
    let mut property = if schedule.all_day {
        let mut property = Property::new(key, local.format("%Y%m%d").to_string());
        property.add_parameter("VALUE", "DATE");
        property
    } else {
        let mut property = Property::new(key, stamp(local));
        property.add_parameter("TZID", schedule.tz.name());
        property
    };
    property.done()
}

fn base_event(event: &IcsEvent<'_>) -> icalendar::Event {
    let mut vevent = icalendar::Event::new();
    vevent
        .uid(&event.uid)
        .timestamp(event.stamp)
        .sequence(event.sequence)
        .summary(event.summary);
    if !event.description.is_empty() {
        vevent.description(event.description);
    }
    if !event.location.is_empty() {
        vevent.location(event.location);
    }
    if !event.url.is_empty() {
        vevent.add_property("URL", event.url);
    }
    if let Some((latitude, longitude)) = event.geo {
        vevent.add_property("GEO", format!("{latitude:.6};{longitude:.6}"));
    }
    vevent
}

fn set_times(
    vevent: &mut icalendar::Event,
    schedule: &Schedule,
    start: NaiveDateTime,
    duration: Duration,
) {
    if schedule.all_day {
        vevent.append_property(local_time_property("DTSTART", schedule, start));
        let days = duration.num_days().max(1);
        vevent.append_property(local_time_property(
            "DTEND",
            schedule,
            start + Duration::days(days),
        ));
    } else {
        vevent.starts(when(schedule, start));
        vevent.ends(when(schedule, start + duration));
    }
}

/// A whole calendar of events, as RFC 5545 text.
pub fn calendar(name: &str, events: &[IcsEvent<'_>]) -> String {
    let mut calendar = Calendar::new();
    calendar.name(name);
    let zones: BTreeSet<(String, i32)> = events
        .iter()
        .filter(|event| !event.schedule.all_day)
        .map(|event| {
            (
                event.schedule.tz.name().to_owned(),
                event.schedule.start.year(),
            )
        })
        .collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for (zone, year) in &zones {
        if !done.insert(zone.clone()) {
            continue;
        }
        let first = zones
            .iter()
            .filter(|(z, _)| z == zone)
            .map(|(_, y)| *y)
            .min()
            .unwrap_or(*year);
        if let Some(component) = zone
            .parse::<Tz>()
            .ok()
            .and_then(|tz| vtimezone(tz, first - 1, first.max(Utc::now().year()) + 2))
        {
            calendar.push(component);
        }
    }
    for event in events {
        let schedule = event.schedule;
        let mut master = base_event(event);
        set_times(&mut master, schedule, schedule.start, schedule.duration);
        if let Some(rule) = &schedule.rrule {
            master.add_property("RRULE", rule);
        }
        if event.cancelled {
            master.status(EventStatus::Cancelled);
        } else {
            master.status(EventStatus::Confirmed);
        }
        calendar.push(master.done());
        for (original, exception) in &schedule.exceptions {
            let mut single = base_event(event);
            single.append_property(local_time_property("RECURRENCE-ID", schedule, *original));
            match exception {
                Exception::Cancelled => {
                    set_times(&mut single, schedule, *original, schedule.duration);
                    single.status(EventStatus::Cancelled);
                }
                Exception::Moved { start, duration } => {
                    set_times(&mut single, schedule, *start, *duration);
                    single.status(if event.cancelled {
                        EventStatus::Cancelled
                    } else {
                        EventStatus::Confirmed
                    });
                }
            }
            calendar.push(single.done());
        }
    }
    tidy(&calendar.done().to_string())
}

/// What `icalendar` writes that RFC 5545 does not want: a DTSTAMP and a UID
/// in every component (VTIMEZONE and its STANDARD/DAYLIGHT may have
/// neither), and its own PRODID.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_zone = false;
    for line in text.split_inclusive("\r\n") {
        let bare = line.trim_end_matches("\r\n");
        if bare == "BEGIN:VTIMEZONE" {
            in_zone = true;
        } else if bare == "END:VTIMEZONE" {
            in_zone = false;
        }
        if in_zone && (bare.starts_with("DTSTAMP:") || bare.starts_with("UID:")) {
            continue;
        }
        if bare.starts_with("PRODID:") {
            out.push_str(&format!("PRODID:{PRODID}\r\n"));
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::NaiveDate;

    use super::*;
    use crate::schedule::parse_tz;

    fn local(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    /// Parses with an independent parser (the `ical` crate).
    fn parse(text: &str) -> ical::parser::ical::component::IcalCalendar {
        ical::IcalParser::new(text.as_bytes())
            .next()
            .expect("a calendar")
            .expect("valid iCalendar")
    }

    fn property<'a>(
        properties: &'a [ical::property::Property],
        name: &str,
    ) -> Option<&'a ical::property::Property> {
        properties.iter().find(|property| property.name == name)
    }

    #[test]
    fn a_weekly_series_with_a_cancelled_and_a_moved_occurrence() {
        let mut exceptions = BTreeMap::new();
        exceptions.insert(local(2026, 10, 27, 19), Exception::Cancelled);
        exceptions.insert(
            local(2026, 11, 3, 19),
            Exception::Moved {
                start: local(2026, 11, 5, 18),
                duration: Duration::hours(1),
            },
        );
        let schedule = Schedule {
            tz: parse_tz("America/New_York").unwrap(),
            start: local(2026, 10, 20, 19),
            duration: Duration::hours(2),
            all_day: false,
            rrule: Some("FREQ=WEEKLY;BYDAY=TU;COUNT=8".into()),
            exceptions,
        };
        let event = IcsEvent {
            uid: "e1@anp.example".into(),
            summary: "Tenants' assembly, Chicago; bring chairs",
            description: "Line one\nLine two",
            location: "Union hall, 1 Main St",
            url: "https://anp.example/n/t/c/events/e1",
            geo: Some((41.88, -87.63)),
            schedule: &schedule,
            sequence: 3,
            cancelled: false,
            stamp: Utc::now(),
        };
        let text = calendar("Chicago", &[event]);
        assert!(text.contains("\r\n"), "CRLF line ends");
        assert!(text.contains(&format!("PRODID:{PRODID}\r\n")));
        let zone =
            &text[text.find("BEGIN:VTIMEZONE").unwrap()..text.find("END:VTIMEZONE").unwrap()];
        assert!(
            !zone.contains("DTSTAMP") && !zone.contains("UID:"),
            "{zone}"
        );
        assert!(text.lines().all(|line| line.len() <= 75), "folded lines");
        let parsed = parse(&text);

        let zone = &parsed.timezones[0];
        assert_eq!(
            property(&zone.properties, "TZID").unwrap().value.as_deref(),
            Some("America/New_York")
        );
        let standard = zone
            .transitions
            .iter()
            .find(|t| {
                property(&t.properties, "DTSTART").and_then(|p| p.value.as_deref())
                    == Some("20261101T020000")
            })
            .expect("the end of daylight saving in 2026");
        assert_eq!(
            property(&standard.properties, "TZOFFSETTO")
                .unwrap()
                .value
                .as_deref(),
            Some("-0500")
        );

        assert_eq!(parsed.events.len(), 3, "the series and two exceptions");
        let master = &parsed.events[0];
        let start = property(&master.properties, "DTSTART").unwrap();
        assert_eq!(start.value.as_deref(), Some("20261020T190000"));
        assert!(
            start
                .params
                .as_ref()
                .unwrap()
                .iter()
                .any(|(key, values)| key == "TZID" && values[0] == "America/New_York")
        );
        assert_eq!(
            property(&master.properties, "RRULE")
                .unwrap()
                .value
                .as_deref(),
            Some("FREQ=WEEKLY;BYDAY=TU;COUNT=8")
        );
        assert_eq!(
            property(&master.properties, "SEQUENCE")
                .unwrap()
                .value
                .as_deref(),
            Some("3")
        );
        assert_eq!(
            property(&master.properties, "SUMMARY")
                .unwrap()
                .value
                .as_deref(),
            Some("Tenants' assembly\\, Chicago\\; bring chairs")
        );
        let cancelled = &parsed.events[1];
        assert_eq!(
            property(&cancelled.properties, "RECURRENCE-ID")
                .unwrap()
                .value
                .as_deref(),
            Some("20261027T190000")
        );
        assert_eq!(
            property(&cancelled.properties, "STATUS")
                .unwrap()
                .value
                .as_deref(),
            Some("CANCELLED")
        );
        let moved = &parsed.events[2];
        assert_eq!(
            property(&moved.properties, "DTSTART")
                .unwrap()
                .value
                .as_deref(),
            Some("20261105T180000")
        );
    }

    #[test]
    fn all_day_events_and_zones_without_daylight_saving() {
        let schedule = Schedule {
            tz: parse_tz("Asia/Kolkata").unwrap(),
            start: local(2026, 12, 1, 0),
            duration: Duration::days(2),
            all_day: true,
            rrule: None,
            exceptions: BTreeMap::new(),
        };
        let timed = Schedule {
            all_day: false,
            duration: Duration::hours(1),
            ..schedule.clone()
        };
        let events = [
            IcsEvent {
                uid: "a@anp".into(),
                summary: "Strike",
                description: "",
                location: "",
                url: "",
                geo: None,
                schedule: &schedule,
                sequence: 0,
                cancelled: true,
                stamp: Utc::now(),
            },
            IcsEvent {
                uid: "b@anp".into(),
                summary: "Call",
                description: "",
                location: "",
                url: "",
                geo: None,
                schedule: &timed,
                sequence: 0,
                cancelled: false,
                stamp: Utc::now(),
            },
        ];
        let parsed = parse(&calendar("India", &events));
        let all_day = &parsed.events[0];
        assert_eq!(
            property(&all_day.properties, "DTSTART")
                .unwrap()
                .value
                .as_deref(),
            Some("20261201")
        );
        assert_eq!(
            property(&all_day.properties, "DTEND")
                .unwrap()
                .value
                .as_deref(),
            Some("20261203")
        );
        assert_eq!(
            property(&all_day.properties, "STATUS")
                .unwrap()
                .value
                .as_deref(),
            Some("CANCELLED")
        );
        let zone = &parsed.timezones[0];
        assert_eq!(zone.transitions.len(), 1);
        assert_eq!(
            property(&zone.transitions[0].properties, "TZOFFSETTO")
                .unwrap()
                .value
                .as_deref(),
            Some("+0530")
        );
    }
}
