//! Co-hosting: one event, one source, shown by several sites (possibly in
//! other networks). The event's editors invite a site; that site's editors
//! accept or decline; the event's editors or the co-host's editors end it.
//! A network that leaves takes its co-hostings with it.

use anp_eventstore::ExpectedVersion;
use anp_kit::Caller;
use anp_proto::calendar::v1::{CalendarEvent, CohostRequest, DecideCohostRequest};
use anp_proto::events::v1::{CalendarEventState, CalendarHost, EventHostsChanged};
use anp_proto::sites::v1::Scope;
use prost::Message;
use uuid::Uuid;

use crate::EventsError;
use crate::calendar::{Calendar, ensure_scheduled, fold, invalid, save_in, site_scope, stream_id};

/// Other sites one event has at most.
pub const HOSTS_MAX: usize = 20;

fn changed(state: &CalendarEventState, site_id: &str, change: &str) -> Vec<u8> {
    EventHostsChanged {
        event: Some(state.clone()),
        site_id: site_id.to_owned(),
        change: change.to_owned(),
    }
    .encode_to_vec()
}

impl Calendar {
    async fn save_hosts(
        &self,
        state: &CalendarEventState,
        version: u64,
        site_id: &str,
        change: &str,
        caller: &Caller,
    ) -> Result<CalendarEvent, EventsError> {
        self.save(
            "EventHostsChanged",
            changed(state, site_id, change),
            state,
            ExpectedVersion::Exact(version),
            caller,
        )
        .await
    }

    /// The event's editors invite another site to co-host it.
    pub async fn invite_cohost(
        &self,
        request: &CohostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let (mut state, version) = self.load_for_change(&request.event_id, token).await?;
        let site = self.access(None, scope).await?.site.unwrap_or_default();
        if site.id == state.site_id {
            return Err(invalid("site_slug: the event's own site hosts it already"));
        }
        if state.hosts.iter().any(|host| host.site_id == site.id) {
            return Err(EventsError::Precondition(format!(
                "site_slug: {}/{} is invited or hosts it already",
                request.network_slug, request.site_slug
            )));
        }
        if state.hosts.len() >= HOSTS_MAX {
            return Err(invalid(format!(
                "site_slug: an event has at most {HOSTS_MAX} co-hosts"
            )));
        }
        state.hosts.push(CalendarHost {
            network_id: site.network_id.clone(),
            network_slug: site.network_slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            status: "invited".into(),
        });
        self.save_hosts(&state, version, &site.id, "invited", &caller)
            .await
    }

    /// The invited site's editors accept or decline.
    pub async fn decide_cohost(
        &self,
        request: &DecideCohostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let (mut state, version) = self.load(&request.event_id).await?;
        let site = self.authorize(token, scope).await?.site.unwrap_or_default();
        ensure_scheduled(&state)?;
        let Some(index) = state
            .hosts
            .iter()
            .position(|host| host.site_id == site.id && host.status == "invited")
        else {
            return Err(EventsError::Precondition(format!(
                "site_slug: {}/{} has no invitation to co-host this event",
                request.network_slug, request.site_slug
            )));
        };
        let change = if request.accept {
            state.hosts[index].status = "accepted".into();
            "accepted"
        } else {
            state.hosts.remove(index);
            "declined"
        };
        self.save_hosts(&state, version, &site.id, change, &caller)
            .await
    }

    /// The event's editors, or the co-host's, end a co-hosting (or an
    /// invitation).
    pub async fn remove_cohost(
        &self,
        request: &CohostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<CalendarEvent, EventsError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let (mut state, version) = self.load(&request.event_id).await?;
        let own = self
            .authorize(
                token,
                Scope {
                    site_id: state.site_id.clone(),
                    ..Default::default()
                },
            )
            .await;
        let site = match own {
            Ok(_) => self.access(None, scope).await?.site.unwrap_or_default(),
            Err(EventsError::Denied(_)) => self
                .authorize(token, scope)
                .await
                .map_err(|err| match err {
                    EventsError::Denied(_) => EventsError::Denied(
                        "permission: the event's editors or the co-host's editors end a co-hosting"
                            .into(),
                    ),
                    other => other,
                })?
                .site
                .unwrap_or_default(),
            Err(other) => return Err(other),
        };
        let before = state.hosts.len();
        state.hosts.retain(|host| host.site_id != site.id);
        if state.hosts.len() == before {
            return Err(EventsError::Precondition(format!(
                "site_slug: {}/{} does not host this event",
                request.network_slug, request.site_slug
            )));
        }
        self.save_hosts(&state, version, &site.id, "removed", &caller)
            .await
    }
}

/// A network that leaves stops co-hosting other networks' events (recorded
/// as `EventHostsChanged`, so every projection drops it), in `tx`.
pub(crate) async fn withdraw_hosts_in(
    tx: &tokio_postgres::Transaction<'_>,
    network_id: Uuid,
) -> Result<(), EventsError> {
    let rows = tx
        .query(
            "SELECT h.event_id FROM calendar_hosts h JOIN calendar_events e USING (event_id) \
             WHERE h.network_id = $1 AND e.network_id <> $1 AND h.status <> 'origin'",
            &[&network_id],
        )
        .await?;
    let caller = Caller {
        actor: "offboarding".into(),
        traceparent: None,
    };
    for row in &rows {
        let event_id: Uuid = row.get(0);
        let stream = anp_eventstore::load_stream_in(tx, &stream_id(event_id)).await?;
        let Some((mut state, version)) = fold(&stream)? else {
            continue;
        };
        let network = network_id.to_string();
        let Some(leaving) = state
            .hosts
            .iter()
            .find(|host| host.network_id == network)
            .map(|host| host.site_id.clone())
        else {
            continue;
        };
        // A network has one site per event at most in practice; all of its
        // sites leave in this one event.
        state.hosts.retain(|host| host.network_id != network);
        save_in(
            tx,
            "EventHostsChanged",
            changed(&state, &leaving, "removed"),
            &state,
            ExpectedVersion::Exact(version),
            &caller,
        )
        .await?;
    }
    Ok(())
}
