//! Calendar events that are right everywhere: a schedule in an IANA time
//! zone (one-off or recurring by an RFC 5545 RRULE), with exceptions per
//! occurrence (cancelled, moved), expanded into occurrences that keep their
//! local time across daylight-saving changes, and written as iCalendar with
//! VTIMEZONE, RRULE, SEQUENCE and cancellations.
//!
//! This crate is the calendar's logic only; the service that stores events
//! and serves them is built on it.

pub mod ics;
pub mod import;
pub mod schedule;
pub mod state;

pub use schedule::{Exception, Occurrence, Schedule};

/// Errors of a schedule; each names the field it is about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("{0}")]
    Invalid(String),
}
