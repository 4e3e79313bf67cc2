//! Events between the wire ([`Envelope`]) and the store ([`RecordedEvent`]).

use anp_eventstore::{Position, RecordedEvent};
use anp_proto::events::v1::Envelope;
use uuid::Uuid;

use crate::ArchiveError;

/// Largest event payload an import accepts.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
const MAX_NAME_CHARS: usize = 200;

/// A stored event as it travels, with the service that owns it. Trace
/// context stays behind: it belongs to the installation that wrote it.
pub fn to_envelope(service: &str, event: &RecordedEvent) -> Envelope {
    let mut envelope = anp_bus::envelope(service, event);
    envelope.traceparent.clear();
    envelope
}

fn invalid(index: u64, field: &str, message: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Invalid(format!("event {index}: {field}: {message}"))
}

fn name(index: u64, field: &str, value: &str) -> Result<(), ArchiveError> {
    if value.is_empty() || value.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            index,
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(index, field, "must not contain control characters"));
    }
    Ok(())
}

/// An archived event as it will be stored, every field checked; `index`
/// (its place in the archive) and the field name are in every error. The
/// global position is left for the store to give.
pub fn from_envelope(index: u64, envelope: &Envelope) -> Result<RecordedEvent, ArchiveError> {
    let uuid = |field: &str, value: &str| {
        value
            .parse::<Uuid>()
            .map_err(|_| invalid(index, field, format!("{value:?} is not a UUID")))
    };
    name(index, "stream_id", &envelope.stream_id)?;
    name(index, "event_type", &envelope.event_type)?;
    name(index, "actor", &envelope.actor)?;
    if !envelope
        .event_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric())
    {
        return Err(invalid(index, "event_type", "letters and digits only"));
    }
    if envelope.version == 0 || envelope.version > i64::MAX as u64 {
        return Err(invalid(index, "version", "must be at least 1"));
    }
    if envelope.schema_version == 0 || envelope.schema_version > i32::MAX as u32 {
        return Err(invalid(index, "schema_version", "must be at least 1"));
    }
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(invalid(
            index,
            "payload",
            format!("at most {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    let occurred_at = envelope
        .occurred_at
        .as_ref()
        .ok_or_else(|| invalid(index, "occurred_at", "missing"))?;
    let occurred_at = chrono::DateTime::from_timestamp(
        occurred_at.seconds,
        u32::try_from(occurred_at.nanos).unwrap_or(u32::MAX),
    )
    .ok_or_else(|| invalid(index, "occurred_at", "out of range"))?;
    Ok(RecordedEvent {
        global: Position::default(),
        event_id: uuid("event_id", &envelope.event_id)?,
        stream_id: envelope.stream_id.clone(),
        version: envelope.version,
        event_type: envelope.event_type.clone(),
        schema_version: envelope.schema_version,
        network_id: uuid("network_id", &envelope.network_id)?,
        site_id: if envelope.site_id.is_empty() {
            None
        } else {
            Some(uuid("site_id", &envelope.site_id)?)
        },
        actor: envelope.actor.clone(),
        occurred_at,
        traceparent: None,
        payload: envelope.payload.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RecordedEvent {
        RecordedEvent {
            global: Position::default(),
            event_id: Uuid::now_v7(),
            stream_id: "post-1".into(),
            version: 2,
            event_type: "PostEdited".into(),
            schema_version: 1,
            network_id: Uuid::now_v7(),
            site_id: Some(Uuid::now_v7()),
            actor: "someone".into(),
            occurred_at: chrono::DateTime::from_timestamp(1_790_000_000, 123_000).unwrap(),
            traceparent: Some("00-abc-def-01".into()),
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip_keeps_everything_but_the_trace() {
        let original = event();
        let back = from_envelope(0, &to_envelope("content", &original)).unwrap();
        assert_eq!(
            back,
            RecordedEvent {
                traceparent: None,
                ..original
            }
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let good = to_envelope("content", &event());
        let cases: Vec<(&str, Envelope)> = vec![
            (
                "event_id",
                Envelope {
                    event_id: "nope".into(),
                    ..good.clone()
                },
            ),
            (
                "version",
                Envelope {
                    version: 0,
                    ..good.clone()
                },
            ),
            (
                "event_type",
                Envelope {
                    event_type: "Drop Table".into(),
                    ..good.clone()
                },
            ),
            (
                "occurred_at",
                Envelope {
                    occurred_at: None,
                    ..good.clone()
                },
            ),
            (
                "payload",
                Envelope {
                    payload: vec![0; MAX_PAYLOAD_BYTES + 1],
                    ..good.clone()
                },
            ),
            (
                "site_id",
                Envelope {
                    site_id: "x".into(),
                    ..good.clone()
                },
            ),
        ];
        for (field, envelope) in cases {
            let err = from_envelope(7, &envelope).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("event 7"),
                "{field}: {err}"
            );
        }
    }
}
