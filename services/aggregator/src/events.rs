//! Decoding envelopes from the bus into what the projections apply.

use anp_proto::events::v1::{
    CalendarEventState, Envelope, EventScheduled, NetworkOffboarded, PageCreated, PageState,
    PostDrafted, PostEdited, PostPublished, PostRetracted, PostScheduled, PostState, SiteCreated,
    SiteRenamed, SiteSettingsChanged, ThreadStarted, ThreadState,
};
use prost::Message;

/// Whether a post belongs in public feeds and search: published and public
/// (older events, without status or visibility, are both).
pub fn publicly_visible(state: &PostState) -> bool {
    matches!(state.status.as_str(), "" | "published")
        && matches!(state.visibility.as_str(), "" | "public")
}

/// An event the read side cares about.
#[derive(Debug, Clone)]
pub enum Projected {
    Site(SiteCreated),
    Post {
        state: PostState,
        version: u64,
    },
    /// A site's new slug or name (empty: unchanged), shown in feeds.
    SiteRenamed {
        site_id: uuid::Uuid,
        slug: String,
        name: String,
    },
    /// A discussion thread as it is after the event (search holds public,
    /// unhidden threads).
    Thread {
        state: ThreadState,
        version: u64,
    },
    /// A site's static page as it is after the event.
    Page {
        state: PageState,
        version: u64,
    },
    /// A calendar event as it is after the event (feeds and search hold its
    /// upcoming occurrences that are not cancelled).
    CalendarEvent {
        state: CalendarEventState,
        version: u64,
    },
    /// The network left the installation: drop everything of it.
    NetworkOffboarded {
        network_id: uuid::Uuid,
        slug: String,
    },
    /// Any other event: nothing to project, but its sequence still counts.
    Ignored,
}

/// What every event says about itself, for metering.
#[derive(Debug, Clone)]
pub struct Meta {
    pub event_id: uuid::Uuid,
    pub network_id: uuid::Uuid,
    pub event_type: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// One message from the stream, decoded.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub seq: u64,
    pub event: Projected,
    /// None when the envelope did not decode.
    pub meta: Option<Meta>,
    /// Trace context of the command that caused the event (may be empty).
    pub traceparent: String,
}

#[derive(Debug, thiserror::Error)]
#[error("event {event_type} cannot be decoded: {message}")]
pub struct DecodeError {
    pub event_type: String,
    pub message: String,
}

/// Decodes an envelope into the projected event, its metadata and its trace
/// context.
pub fn decode(payload: &[u8]) -> Result<(Projected, Option<Meta>, String), DecodeError> {
    let envelope = Envelope::decode(payload).map_err(|err| DecodeError {
        event_type: "envelope".into(),
        message: err.to_string(),
    })?;
    decode_envelope(envelope)
}

/// Decodes an envelope read from an event store (a rebuild) or the bus.
pub fn decode_envelope(
    envelope: Envelope,
) -> Result<(Projected, Option<Meta>, String), DecodeError> {
    let fail = |err: prost::DecodeError| DecodeError {
        event_type: envelope.event_type.clone(),
        message: err.to_string(),
    };
    let missing = || DecodeError {
        event_type: envelope.event_type.clone(),
        message: "missing post".into(),
    };
    let projected = match envelope.event_type.as_str() {
        "SiteCreated" => {
            Projected::Site(SiteCreated::decode(envelope.payload.as_slice()).map_err(fail)?)
        }
        "PostPublished" => Projected::Post {
            state: PostPublished::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "PostEdited" => Projected::Post {
            state: PostEdited::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "ThreadStarted" | "ThreadEdited" | "ThreadModerated" | "ReplyPosted" | "ReplyEdited"
        | "ReplyModerated" | "DiscussionReported" => {
            // Every discussion event has the thread as its first field.
            let thread = ThreadStarted::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .thread
                .ok_or_else(missing)?;
            Projected::Thread {
                state: thread,
                version: envelope.version,
            }
        }
        "PageCreated" | "PageEdited" | "PageDeleted" => {
            // Every page event has the page as its first field.
            let page = PageCreated::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .page
                .ok_or_else(missing)?;
            Projected::Page {
                state: page,
                version: envelope.version,
            }
        }
        // Every post event has the whole post as its first field.
        "PostShareRequested" | "PostShareDecided" | "PostUnshared" => Projected::Post {
            state: PostPublished::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "PostDrafted" => Projected::Post {
            state: PostDrafted::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "PostScheduled" => Projected::Post {
            state: PostScheduled::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "PostRetracted" => Projected::Post {
            state: PostRetracted::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .post
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        // Every calendar event carries the whole event as its first field;
        // RSVPs (`RsvpsChanged`) are personal and never projected.
        "EventScheduled"
        | "EventUpdated"
        | "EventCancelled"
        | "OccurrenceCancelled"
        | "OccurrenceRescheduled"
        | "EventHostsChanged" => Projected::CalendarEvent {
            state: EventScheduled::decode(envelope.payload.as_slice())
                .map_err(fail)?
                .event
                .ok_or_else(missing)?,
            version: envelope.version,
        },
        "SiteRenamed" => {
            let renamed = SiteRenamed::decode(envelope.payload.as_slice()).map_err(fail)?;
            match renamed.site_id.parse() {
                Ok(site_id) => Projected::SiteRenamed {
                    site_id,
                    slug: renamed.slug,
                    name: renamed.name,
                },
                Err(_) => Projected::Ignored,
            }
        }
        "NetworkOffboarded" => {
            let offboarded =
                NetworkOffboarded::decode(envelope.payload.as_slice()).map_err(fail)?;
            match offboarded.network_id.parse() {
                Ok(network_id) => Projected::NetworkOffboarded {
                    network_id,
                    slug: offboarded.slug,
                },
                Err(_) => Projected::Ignored,
            }
        }
        "SiteSettingsChanged" => {
            let changed = SiteSettingsChanged::decode(envelope.payload.as_slice()).map_err(fail)?;
            match (changed.site_id.parse(), changed.settings) {
                (Ok(site_id), Some(settings)) => Projected::SiteRenamed {
                    site_id,
                    slug: String::new(),
                    name: settings.name,
                },
                _ => Projected::Ignored,
            }
        }
        _ => Projected::Ignored,
    };
    let meta = match (
        envelope.event_id.parse::<uuid::Uuid>(),
        envelope.network_id.parse::<uuid::Uuid>(),
    ) {
        (Ok(event_id), Ok(network_id)) => Some(Meta {
            event_id,
            network_id,
            event_type: envelope.event_type.clone(),
            occurred_at: anp_kit::from_timestamp(envelope.occurred_at.as_ref()),
        }),
        _ => None,
    };
    Ok((projected, meta, envelope.traceparent))
}
