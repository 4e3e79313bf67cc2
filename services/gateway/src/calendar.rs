//! Calendar pages: iCalendar for calendar apps (an event, a site, a network,
//! the umbrella), month and list views, and event pages with schema.org
//! data and RSVP for signed-in people.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use anp_proto::calendar::v1::ExportIcsRequest;

use crate::views::require_slug;
use crate::{AppState, PageError};

fn ics_response(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/calendar; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn export(state: &AppState, request: ExportIcsRequest) -> Result<Response, PageError> {
    let ics = state
        .calendar
        .clone()
        .export_ics(request)
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    Ok(ics_response(ics.text))
}

/// A site's calendar (its own and co-hosted events).
pub async fn site_ics(
    State(state): State<AppState>,
    Path((network_slug, site_slug)): Path<(String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    export(
        &state,
        ExportIcsRequest {
            event_id: String::new(),
            network_slug,
            site_slug,
        },
    )
    .await
}

/// Every event of a network's sites.
pub async fn network_ics(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    export(
        &state,
        ExportIcsRequest {
            network_slug,
            ..Default::default()
        },
    )
    .await
}

/// Every network's events.
pub async fn umbrella_ics(State(state): State<AppState>) -> Result<Response, PageError> {
    export(&state, ExportIcsRequest::default()).await
}
