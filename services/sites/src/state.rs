//! The state tables, derived from events.
//!
//! Every write appends its events and applies them here in the same
//! transaction ([`commit`]); an import applies the same events the same way,
//! so the tables of an imported network are exactly what its events say.

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent, append_in};
use anp_proto::events::v1 as ev;
use prost::Message;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::accounts::unseal_personal;
use crate::error::SitesError;
use crate::model::role_from_name;

/// Appends `events` to `stream` and applies them to the state tables.
pub async fn commit<C: GenericClient>(
    client: &C,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<(), SitesError> {
    let recorded = append_in(client, stream, expected, &events).await?;
    for event in &recorded {
        apply(client, event).await?;
    }
    Ok(())
}

fn decode<M: Message + Default>(event: &RecordedEvent) -> Result<M, SitesError> {
    M::decode(event.payload.as_slice()).map_err(|err| {
        SitesError::Internal(format!(
            "event {} ({}) does not decode: {err}",
            event.event_id, event.event_type
        ))
    })
}

fn uuid(field: &str, value: &str) -> Result<Uuid, SitesError> {
    value
        .parse()
        .map_err(|_| SitesError::Internal(format!("event field {field}: {value:?} is not a UUID")))
}

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, SitesError> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(field, value).map(Some)
    }
}

/// The membership scope of an event: the site, or the network itself.
fn scope_of(network_id: &str, site_id: &str) -> Result<Uuid, SitesError> {
    match optional_uuid("site_id", site_id)? {
        Some(site) => Ok(site),
        None => uuid("network_id", network_id),
    }
}

/// What a network's event names, so an import can check that it stays
/// inside its network.
#[derive(Debug, Default)]
pub struct Named {
    pub network_id: Option<Uuid>,
    pub sites: Vec<Uuid>,
    pub invitation: Option<Uuid>,
    pub request: Option<Uuid>,
}

/// The network, sites, invitation and join request an event of a network
/// names (account events name none).
pub fn named(event: &RecordedEvent) -> Result<Named, SitesError> {
    let sites = |values: &[&str]| -> Result<Vec<Uuid>, SitesError> {
        let mut ids = Vec::new();
        for value in values {
            ids.extend(optional_uuid("site_id", value)?);
        }
        Ok(ids)
    };
    // The message's network and the site fields listed.
    macro_rules! of {
        ($message:ty $(; $($site:ident),*)?) => {{
            let e: $message = decode(event)?;
            let named = Named {
                network_id: Some(uuid("network_id", &e.network_id)?),
                sites: sites(&[$($(e.$site.as_str()),*)?])?,
                ..Default::default()
            };
            (named, e)
        }};
    }
    Ok(match event.event_type.as_str() {
        "NetworkOnboarded" => of!(ev::NetworkOnboarded).0,
        "NetworkPlanChanged" => of!(ev::NetworkPlanChanged).0,
        "NetworkSuspended" => of!(ev::NetworkSuspended).0,
        "NetworkResumed" => of!(ev::NetworkResumed).0,
        "NetworkOffboarded" => of!(ev::NetworkOffboarded).0,
        "SiteCreated" => of!(ev::SiteCreated; site_id, parent_site_id).0,
        "SiteSettingsChanged" => of!(ev::SiteSettingsChanged; site_id).0,
        "SiteRenamed" => of!(ev::SiteRenamed; site_id).0,
        "SiteMoved" => of!(ev::SiteMoved; site_id, parent_site_id).0,
        "SiteArchived" => of!(ev::SiteArchived; site_id).0,
        "SiteRestored" => of!(ev::SiteRestored; site_id).0,
        "MemberJoined" => of!(ev::MemberJoined; site_id).0,
        "MemberRoleChanged" => of!(ev::MemberRoleChanged; site_id).0,
        "MemberLeft" => of!(ev::MemberLeft; site_id).0,
        "InvitationCreated" => {
            let (named, e) = of!(ev::InvitationCreated; site_id);
            Named {
                invitation: Some(uuid("invitation_id", &e.invitation_id)?),
                ..named
            }
        }
        "InvitationAccepted" => {
            let (named, e) = of!(ev::InvitationAccepted);
            Named {
                invitation: Some(uuid("invitation_id", &e.invitation_id)?),
                ..named
            }
        }
        "JoinRequested" => {
            let (named, e) = of!(ev::JoinRequested; site_id);
            Named {
                request: Some(uuid("request_id", &e.request_id)?),
                ..named
            }
        }
        "JoinRequestDecided" => {
            let (named, e) = of!(ev::JoinRequestDecided);
            Named {
                request: Some(uuid("request_id", &e.request_id)?),
                ..named
            }
        }
        _ => Named::default(),
    })
}

/// Applies one event to the state tables, then the usage gauges.
pub async fn apply<C: GenericClient>(client: &C, event: &RecordedEvent) -> Result<(), SitesError> {
    // Forgetting an account changes the member count of every network it was in.
    let mut gauged: Vec<Uuid> = Vec::new();
    if event.event_type == "NetworkOffboarded" {
        let e: ev::NetworkOffboarded = decode(event)?;
        gauged.push(uuid("network_id", &e.network_id)?);
    }
    if event.event_type == "AccountForgotten" {
        let e: ev::AccountForgotten = decode(event)?;
        let rows = client
            .query(
                "SELECT DISTINCT network_id FROM memberships WHERE account_id = $1",
                &[&uuid("account_id", &e.account_id)?],
            )
            .await?;
        gauged.extend(rows.iter().map(|row| row.get::<_, Uuid>(0)));
    }
    apply_state(client, event).await?;
    if matches!(
        event.event_type.as_str(),
        "NetworkOnboarded"
            | "SiteCreated"
            | "SiteArchived"
            | "SiteRestored"
            | "MemberJoined"
            | "MemberLeft"
    ) {
        gauged.push(event.network_id);
    }
    let day = event.occurred_at.date_naive();
    for network_id in gauged {
        client
            .execute(
                "INSERT INTO usage_gauges (network_id, day, sites, members) SELECT $1, $2,                    (SELECT count(*) FROM sites WHERE network_id = $1 AND archived_at IS NULL),                    (SELECT count(DISTINCT account_id) FROM memberships WHERE network_id = $1)                  ON CONFLICT (network_id, day) DO UPDATE SET sites = EXCLUDED.sites, members = EXCLUDED.members",
                &[&network_id, &day],
            )
            .await?;
    }
    Ok(())
}

async fn apply_state<C: GenericClient>(
    client: &C,
    event: &RecordedEvent,
) -> Result<(), SitesError> {
    let at = event.occurred_at;
    match event.event_type.as_str() {
        "NetworkOnboarded" => {
            let e: ev::NetworkOnboarded = decode(event)?;
            let quotas = e.quotas.unwrap_or_default();
            // A network imported back: it is here again, not gone.
            client
                .execute(
                    "DELETE FROM offboarded_networks WHERE id = $1",
                    &[&uuid("network_id", &e.network_id)?],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO networks (id, slug, name, created_at, plan, quota_sites, \
                     quota_members, quota_storage_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &uuid("network_id", &e.network_id)?,
                        &e.slug,
                        &e.name,
                        &at,
                        &e.plan,
                        &quotas.sites,
                        &quotas.members,
                        &quotas.storage_bytes,
                    ],
                )
                .await
                .map_err(|err| crate::error::taken_or_db(err, "slug", &e.slug))?;
        }
        "NetworkPlanChanged" => {
            let e: ev::NetworkPlanChanged = decode(event)?;
            let quotas = e.quotas.unwrap_or_default();
            client
                .execute(
                    "UPDATE networks SET plan = $2, quota_sites = $3, quota_members = $4, \
                     quota_storage_bytes = $5 WHERE id = $1",
                    &[
                        &uuid("network_id", &e.network_id)?,
                        &e.plan,
                        &quotas.sites,
                        &quotas.members,
                        &quotas.storage_bytes,
                    ],
                )
                .await?;
        }
        "NetworkSuspended" => {
            let e: ev::NetworkSuspended = decode(event)?;
            client
                .execute(
                    "UPDATE networks SET status = 'suspended', notice = $2, suspended_at = $3 \
                     WHERE id = $1",
                    &[&uuid("network_id", &e.network_id)?, &e.notice, &at],
                )
                .await?;
        }
        "NetworkResumed" => {
            let e: ev::NetworkResumed = decode(event)?;
            client
                .execute(
                    "UPDATE networks SET status = 'active', notice = '', suspended_at = NULL \
                     WHERE id = $1",
                    &[&uuid("network_id", &e.network_id)?],
                )
                .await?;
        }
        "NetworkOffboarded" => {
            let e: ev::NetworkOffboarded = decode(event)?;
            let network_id = uuid("network_id", &e.network_id)?;
            client
                .execute(
                    "INSERT INTO offboarded_networks (id, slug, name, plan, created_at, offboarded_at) \
                     SELECT id, slug, name, plan, created_at, $2 FROM networks WHERE id = $1 \
                     ON CONFLICT (id) DO UPDATE SET offboarded_at = EXCLUDED.offboarded_at",
                    &[&network_id, &at],
                )
                .await?;
            for statement in [
                "DELETE FROM network_idempotency WHERE network_id = $1",
                "DELETE FROM site_aliases WHERE network_id = $1",
                "DELETE FROM invitations WHERE network_id = $1",
                "DELETE FROM join_requests WHERE network_id = $1",
                "DELETE FROM memberships WHERE network_id = $1",
                "DELETE FROM sites WHERE network_id = $1",
                "DELETE FROM networks WHERE id = $1",
            ] {
                client.execute(statement, &[&network_id]).await?;
            }
        }
        "SiteCreated" => {
            let e: ev::SiteCreated = decode(event)?;
            let site_id = uuid("site_id", &e.site_id)?;
            let parent = optional_uuid("parent_site_id", &e.parent_site_id)?;
            let settings = e.settings.unwrap_or_else(|| ev::SiteSettings {
                name: e.name.clone(),
                languages: vec!["en".into()],
                ..Default::default()
            });
            client
                .execute(
                    "INSERT INTO sites (id, network_id, slug, name, created_at, updated_at, \
                     parent_id, path) VALUES ($1, $2, $3, $4, $5, $5, $6, \
                     COALESCE((SELECT path FROM sites WHERE id = $6), '{}') || ARRAY[$1::uuid])",
                    &[
                        &site_id,
                        &uuid("network_id", &e.network_id)?,
                        &e.slug,
                        &e.name,
                        &at,
                        &parent,
                    ],
                )
                .await
                .map_err(|err| crate::error::taken_or_db(err, "slug", &e.slug))?;
            write_settings(client, site_id, &settings, at).await?;
        }
        "SiteSettingsChanged" => {
            let e: ev::SiteSettingsChanged = decode(event)?;
            let settings = e.settings.unwrap_or_default();
            write_settings(client, uuid("site_id", &e.site_id)?, &settings, at).await?;
        }
        "SiteRenamed" => {
            let e: ev::SiteRenamed = decode(event)?;
            let site_id = uuid("site_id", &e.site_id)?;
            let network_id = uuid("network_id", &e.network_id)?;
            client
                .execute(
                    "DELETE FROM site_aliases WHERE network_id = $1 AND slug = $2",
                    &[&network_id, &e.slug],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO site_aliases (network_id, slug, site_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (network_id, slug) DO UPDATE SET site_id = EXCLUDED.site_id",
                    &[&network_id, &e.previous_slug, &site_id],
                )
                .await?;
            client
                .execute(
                    "UPDATE sites SET slug = $2, name = CASE WHEN $3 = '' THEN name ELSE $3 END, \
                     updated_at = $4 WHERE id = $1",
                    &[&site_id, &e.slug, &e.name, &at],
                )
                .await
                .map_err(|err| crate::error::taken_or_db(err, "new_slug", &e.slug))?;
        }
        "SiteMoved" => {
            let e: ev::SiteMoved = decode(event)?;
            let site_id = uuid("site_id", &e.site_id)?;
            let parent = optional_uuid("parent_site_id", &e.parent_site_id)?;
            // The subtree's paths: the new parent's path, then each site's
            // path from the moved site on.
            client
                .execute(
                    "WITH moved AS (SELECT path, array_length(path, 1) AS len FROM sites WHERE id = $1), \
                     prefix AS (SELECT COALESCE((SELECT path FROM sites WHERE id = $2), '{}') AS path) \
                     UPDATE sites s SET path = prefix.path || s.path[moved.len:], \
                       parent_id = CASE WHEN s.id = $1 THEN $2 ELSE s.parent_id END, \
                       updated_at = CASE WHEN s.id = $1 THEN $3 ELSE s.updated_at END \
                     FROM moved, prefix WHERE s.path @> ARRAY[$1]::uuid[]",
                    &[&site_id, &parent, &at],
                )
                .await?;
        }
        "SiteArchived" => {
            let e: ev::SiteArchived = decode(event)?;
            client
                .execute(
                    "UPDATE sites SET archived_at = $2, updated_at = $2 WHERE id = $1",
                    &[&uuid("site_id", &e.site_id)?, &at],
                )
                .await?;
        }
        "SiteRestored" => {
            let e: ev::SiteRestored = decode(event)?;
            client
                .execute(
                    "UPDATE sites SET archived_at = NULL, updated_at = $2 WHERE id = $1",
                    &[&uuid("site_id", &e.site_id)?, &at],
                )
                .await?;
        }
        "AccountRegistered" => {
            let e: ev::AccountRegistered = decode(event)?;
            let account_id = uuid("account_id", &e.account_id)?;
            let key = client
                .query_opt(
                    "SELECT key FROM account_keys WHERE account_id = $1",
                    &[&account_id],
                )
                .await?;
            // No key: the account was forgotten; its data stays unreadable.
            if let Some(key) = key {
                let key: Vec<u8> = key.get(0);
                let personal = unseal_personal(&key, &e.sealed_personal)?;
                client
                    .execute(
                        "INSERT INTO accounts (id, email, display_name, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &account_id,
                            &personal.email,
                            &personal.display_name,
                            &personal.password_hash,
                            &at,
                        ],
                    )
                    .await
                    .map_err(|err| crate::error::taken_or_db(err, "email", &personal.email))?;
            }
        }
        "AccountForgotten" => {
            let e: ev::AccountForgotten = decode(event)?;
            let account_id = uuid("account_id", &e.account_id)?;
            for table in [
                "DELETE FROM account_keys WHERE account_id = $1",
                "DELETE FROM accounts WHERE id = $1",
                "DELETE FROM sessions WHERE account_id = $1",
                "DELETE FROM memberships WHERE account_id = $1",
                "DELETE FROM join_requests WHERE account_id = $1",
            ] {
                client.execute(table, &[&account_id]).await?;
            }
        }
        "MemberJoined" => {
            let e: ev::MemberJoined = decode(event)?;
            let role = role_from_name(&e.role) as i16;
            client
                .execute(
                    "INSERT INTO memberships (network_id, scope_id, account_id, role, joined_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (scope_id, account_id) DO UPDATE SET role = EXCLUDED.role",
                    &[
                        &uuid("network_id", &e.network_id)?,
                        &scope_of(&e.network_id, &e.site_id)?,
                        &uuid("account_id", &e.account_id)?,
                        &role,
                        &at,
                    ],
                )
                .await?;
        }
        "MemberRoleChanged" => {
            let e: ev::MemberRoleChanged = decode(event)?;
            let role = role_from_name(&e.role) as i16;
            client
                .execute(
                    "UPDATE memberships SET role = $3 WHERE scope_id = $1 AND account_id = $2",
                    &[
                        &scope_of(&e.network_id, &e.site_id)?,
                        &uuid("account_id", &e.account_id)?,
                        &role,
                    ],
                )
                .await?;
        }
        "MemberLeft" => {
            let e: ev::MemberLeft = decode(event)?;
            client
                .execute(
                    "DELETE FROM memberships WHERE scope_id = $1 AND account_id = $2",
                    &[
                        &scope_of(&e.network_id, &e.site_id)?,
                        &uuid("account_id", &e.account_id)?,
                    ],
                )
                .await?;
        }
        "InvitationCreated" => {
            let e: ev::InvitationCreated = decode(event)?;
            let role = role_from_name(&e.role) as i16;
            let expires_at = anp_kit::from_timestamp(e.expires_at.as_ref());
            let email_hash = (!e.email_hash.is_empty()).then_some(e.email_hash.clone());
            client
                .execute(
                    "INSERT INTO invitations (id, network_id, scope_id, role, expires_at, email_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &uuid("invitation_id", &e.invitation_id)?,
                        &uuid("network_id", &e.network_id)?,
                        &scope_of(&e.network_id, &e.site_id)?,
                        &role,
                        &expires_at,
                        &email_hash,
                    ],
                )
                .await?;
        }
        "InvitationAccepted" => {
            let e: ev::InvitationAccepted = decode(event)?;
            client
                .execute(
                    "UPDATE invitations SET accepted_by = $2, accepted_at = $3 WHERE id = $1",
                    &[
                        &uuid("invitation_id", &e.invitation_id)?,
                        &uuid("account_id", &e.account_id)?,
                        &at,
                    ],
                )
                .await?;
        }
        "JoinRequested" => {
            let e: ev::JoinRequested = decode(event)?;
            client
                .execute(
                    "INSERT INTO join_requests (id, network_id, scope_id, account_id, message, \
                     requested_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &uuid("request_id", &e.request_id)?,
                        &uuid("network_id", &e.network_id)?,
                        &scope_of(&e.network_id, &e.site_id)?,
                        &uuid("account_id", &e.account_id)?,
                        &e.message,
                        &at,
                    ],
                )
                .await
                .map_err(|err| crate::error::taken_or_db(err, "scope", "a pending request"))?;
        }
        "JoinRequestDecided" => {
            let e: ev::JoinRequestDecided = decode(event)?;
            let status = if e.approved { "approved" } else { "declined" };
            client
                .execute(
                    "UPDATE join_requests SET status = $2, decided_at = $3 WHERE id = $1",
                    &[&uuid("request_id", &e.request_id)?, &status, &at],
                )
                .await?;
        }
        other => {
            return Err(SitesError::Internal(format!(
                "event type {other} is not one of the sites service's"
            )));
        }
    }
    Ok(())
}

async fn write_settings<C: GenericClient>(
    client: &C,
    site_id: Uuid,
    settings: &ev::SiteSettings,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), SitesError> {
    let place = settings.place.clone().unwrap_or_default();
    let (latitude, longitude) = if place.has_coordinates {
        (Some(place.latitude), Some(place.longitude))
    } else {
        (None, None)
    };
    let domain = (!settings.custom_domain.is_empty()).then_some(settings.custom_domain.as_str());
    client
        .execute(
            "UPDATE sites SET name = $2, description = $3, languages = $4, city = $5, country = $6, \
             latitude = $7, longitude = $8, tags = $9, feed_urls = $10, custom_domain = $11, \
             invite_only = $12, updated_at = $13 WHERE id = $1",
            &[
                &site_id,
                &settings.name,
                &settings.description,
                &settings.languages,
                &place.city,
                &place.country,
                &latitude,
                &longitude,
                &settings.tags,
                &settings.feed_urls,
                &domain,
                &settings.invite_only,
                &at,
            ],
        )
        .await
        .map_err(|err| crate::error::taken_or_db(err, "settings.custom_domain", &settings.custom_domain))?;
    Ok(())
}
