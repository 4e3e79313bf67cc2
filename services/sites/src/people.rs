//! Members and roles: invitations, joining (open sites) and join requests
//! (invite-only sites), leaving, removal, roles, and the access answer the
//! other services ask for.

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::events::v1 as ev;
use anp_proto::sites::v1::{
    Access, Invitation, JoinRequestInfo, JoinResponse, Membership, Role, Scope, WhoAmIResponse,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;
use tokio_postgres::GenericClient;
use tracing::info;
use uuid::Uuid;

use crate::access::{
    Standing, Target, membership_at, network_by_id, resolve, role_in, site_by_id, standing,
};
use crate::accounts::{Principal, email_hash, normalize_email};
use crate::error::SitesError;
use crate::model::{NetworkRow, role_from_i16, role_name};
use crate::{Sites, state};

pub const INVITATION_TTL_HOURS: u32 = 168;
pub const INVITATION_TTL_MAX_HOURS: u32 = 720;
pub const JOIN_MESSAGE_MAX: usize = 500;
/// Most networks and sites listed as a caller's readable scopes.
const READER_SCOPES_MAX: i64 = 10_000;
const TOKEN_MAC_BYTES: usize = 16;

pub fn network_stream(network_id: Uuid) -> String {
    format!("network-{network_id}")
}

/// What one membership change records.
pub struct Change {
    pub network_id: Uuid,
    pub site_id: Option<Uuid>,
    pub event_type: &'static str,
    pub payload: Vec<u8>,
}

impl Change {
    pub fn new(target: &Target, event_type: &'static str, payload: impl Message) -> Self {
        Change {
            network_id: target.network.id,
            site_id: target.site.as_ref().map(|site| site.id),
            event_type,
            payload: payload.encode_to_vec(),
        }
    }
}

/// Appends membership events to the network's stream and applies them.
pub async fn record<C: GenericClient>(
    client: &C,
    actor: &str,
    traceparent: &Option<String>,
    changes: Vec<Change>,
) -> Result<(), SitesError> {
    let Some(first) = changes.first() else {
        return Ok(());
    };
    let stream = network_stream(first.network_id);
    let events = changes
        .into_iter()
        .map(|change| {
            let event = NewEvent::new(change.event_type, change.network_id, actor, change.payload)
                .with_traceparent(traceparent.clone());
            match change.site_id {
                Some(site) => event.with_site(site),
                None => event,
            }
        })
        .collect();
    state::commit(client, &stream, ExpectedVersion::Any, events).await
}

/// Fails with `RESOURCE_EXHAUSTED` when `account_id` would be one member too
/// many (an account already in the network costs nothing more).
pub async fn check_member_quota<C: GenericClient>(
    client: &C,
    network: &NetworkRow,
    account_id: Uuid,
) -> Result<(), SitesError> {
    let row = client
        .query_one(
            "SELECT count(DISTINCT account_id), bool_or(account_id = $2) FROM memberships \
             WHERE network_id = $1",
            &[&network.id, &account_id],
        )
        .await?;
    let members: i64 = row.get(0);
    let already: Option<bool> = row.get(1);
    if already != Some(true) && members >= network.quota_members {
        return Err(SitesError::Quota {
            quota: "members",
            limit: network.quota_members,
        });
    }
    Ok(())
}

/// The events that give `account_id` `role` at the target: a join, a
/// promotion, or nothing when it already holds as much.
pub async fn grant<C: GenericClient>(
    client: &C,
    target: &Target,
    account_id: Uuid,
    role: Role,
    via: &str,
) -> Result<Vec<Change>, SitesError> {
    let site_id = target
        .site
        .as_ref()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    match membership_at(client, account_id, target.scope_id()).await? {
        Some(current) if current >= role => Ok(vec![]),
        Some(current) => Ok(vec![Change::new(
            target,
            "MemberRoleChanged",
            ev::MemberRoleChanged {
                account_id: account_id.to_string(),
                network_id: target.network.id.to_string(),
                site_id,
                role: role_name(role).into(),
                previous_role: role_name(current).into(),
            },
        )]),
        None => {
            check_member_quota(client, &target.network, account_id).await?;
            Ok(vec![Change::new(
                target,
                "MemberJoined",
                ev::MemberJoined {
                    account_id: account_id.to_string(),
                    network_id: target.network.id.to_string(),
                    site_id,
                    role: role_name(role).into(),
                    via: via.into(),
                },
            )])
        }
    }
}

/// Fails when `account_id` is the network's last admin and would stop being one.
async fn check_not_last_admin<C: GenericClient>(
    client: &C,
    target: &Target,
    account_id: Uuid,
) -> Result<(), SitesError> {
    if target.site.is_some() {
        return Ok(());
    }
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE account_id <> $2) FROM memberships \
             WHERE scope_id = $1 AND role = $3",
            &[
                &target.network.id,
                &account_id,
                &(Role::NetworkAdmin as i16),
            ],
        )
        .await?;
    let other_admins: i64 = row.get(0);
    let is_admin =
        membership_at(client, account_id, target.network.id).await? == Some(Role::NetworkAdmin);
    if is_admin && other_admins == 0 {
        return Err(SitesError::Precondition(format!(
            "account_id: the last admin of network {} cannot step down; make someone else admin first",
            target.network.slug
        )));
    }
    Ok(())
}

fn membership(
    target: &Target,
    account_id: Uuid,
    display_name: String,
    role: Role,
    joined_at: DateTime<Utc>,
) -> Membership {
    Membership {
        account_id: account_id.to_string(),
        display_name,
        network_slug: target.network.slug.clone(),
        site_slug: target.site_slug().to_owned(),
        role: role as i32,
        joined_at: Some(anp_kit::timestamp(joined_at)),
    }
}

fn check_ttl(ttl_hours: u32) -> Result<u32, SitesError> {
    match ttl_hours {
        0 => Ok(INVITATION_TTL_HOURS),
        hours if hours <= INVITATION_TTL_MAX_HOURS => Ok(hours),
        _ => Err(SitesError::invalid(format!(
            "ttl_hours: at most {INVITATION_TTL_MAX_HOURS} (30 days)"
        ))),
    }
}

impl Sites {
    /// The token of an invitation: its id and a MAC of the id under a secret
    /// derived from the signing key. Nothing secret is stored, and a retried
    /// onboarding can give the same token again.
    pub fn invitation_token(&self, invitation_id: Uuid) -> String {
        let mut bytes = invitation_id.as_bytes().to_vec();
        bytes.extend_from_slice(&self.invitation_mac(invitation_id)[..TOKEN_MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn invitation_mac(&self, invitation_id: Uuid) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.invitation_secret)
            .expect("HMAC takes a key of any length");
        mac.update(invitation_id.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn invitation_of_token(&self, token: &str) -> Result<Uuid, SitesError> {
        let bad = || SitesError::invalid("token: not a valid invitation token");
        if token.len() > 64 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
        if bytes.len() != 16 + TOKEN_MAC_BYTES {
            return Err(bad());
        }
        let id = Uuid::from_slice(&bytes[..16]).map_err(|_| bad())?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.invitation_secret)
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.verify_truncated_left(&bytes[16..]).map_err(|_| bad())?;
        Ok(id)
    }

    pub fn invitation_proto(
        &self,
        invitation_id: Uuid,
        target: &Target,
        role: Role,
        expires_at: DateTime<Utc>,
    ) -> Invitation {
        Invitation {
            id: invitation_id.to_string(),
            token: self.invitation_token(invitation_id),
            network_slug: target.network.slug.clone(),
            site_slug: target.site_slug().to_owned(),
            role: role as i32,
            expires_at: Some(anp_kit::timestamp(expires_at)),
        }
    }

    /// The `InvitationCreated` change for an invitation to `target`.
    pub fn invitation_change(
        target: &Target,
        invitation_id: Uuid,
        role: Role,
        ttl_hours: u32,
        email: Option<&str>,
    ) -> (Change, DateTime<Utc>) {
        let expires_at = Utc::now() + Duration::hours(i64::from(ttl_hours));
        let change = Change::new(
            target,
            "InvitationCreated",
            ev::InvitationCreated {
                invitation_id: invitation_id.to_string(),
                network_id: target.network.id.to_string(),
                site_id: target
                    .site
                    .as_ref()
                    .map(|s| s.id.to_string())
                    .unwrap_or_default(),
                role: role_name(role).into(),
                expires_at: Some(anp_kit::timestamp(expires_at)),
                email_hash: email.map(email_hash).unwrap_or_default(),
            },
        );
        (change, expires_at)
    }

    pub async fn invite(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        role: i32,
        ttl_hours: u32,
        email: &str,
        traceparent: Option<String>,
    ) -> Result<Invitation, SitesError> {
        let role = crate::model::requested_role("role", role)?;
        let ttl_hours = check_ttl(ttl_hours)?;
        let email = if email.trim().is_empty() {
            None
        } else {
            Some(normalize_email(email)?)
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "scope", scope, true).await?;
        target.network.check_active()?;
        let caller = role_in(&*tx, principal.account_id, &target).await?;
        target.require(caller, target.admin_role())?;
        if role > caller {
            return Err(SitesError::denied(format!(
                "role: you cannot invite someone as {} with your {} role",
                role_name(role),
                role_name(caller)
            )));
        }
        if role == Role::NetworkAdmin && target.site.is_some() {
            return Err(SitesError::invalid(
                "role: network_admin is a role of the network; invite to the network instead",
            ));
        }
        let invitation_id = Uuid::now_v7();
        let (change, expires_at) =
            Self::invitation_change(&target, invitation_id, role, ttl_hours, email.as_deref());
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            vec![change],
        )
        .await?;
        tx.commit().await?;
        info!(%invitation_id, scope = %target.describe(), role = role_name(role), "invitation created");
        Ok(self.invitation_proto(invitation_id, &target, role, expires_at))
    }

    pub async fn accept_invitation(
        &self,
        principal: Principal,
        token: &str,
        traceparent: Option<String>,
    ) -> Result<Membership, SitesError> {
        let invitation_id = self.invitation_of_token(token)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT network_id, scope_id, role, expires_at, email_hash \
                 FROM invitations WHERE id = $1",
                &[&invitation_id],
            )
            .await?
            .ok_or_else(|| {
                SitesError::not_found("token: no such invitation (was the network offboarded?)")
            })?;
        let network_id: Uuid = row.get(0);
        let scope_id: Uuid = row.get(1);
        let role = role_from_i16(row.get(2));
        let expires_at: DateTime<Utc> = row.get(3);
        let bound_to: Option<Vec<u8>> = row.get(4);
        let network = network_by_id(&*tx, network_id, true).await?;
        // Re-read under the network lock: one acceptance wins.
        let accepted: Option<Uuid> = tx
            .query_one(
                "SELECT accepted_by FROM invitations WHERE id = $1",
                &[&invitation_id],
            )
            .await?
            .get(0);
        if accepted.is_some() {
            return Err(SitesError::Precondition(
                "token: this invitation was already used".into(),
            ));
        }
        if expires_at <= Utc::now() {
            return Err(SitesError::Precondition(
                "token: this invitation has expired; ask for a new one".into(),
            ));
        }
        if let Some(bound) = bound_to {
            let email: String = tx
                .query_one(
                    "SELECT email FROM accounts WHERE id = $1",
                    &[&principal.account_id],
                )
                .await?
                .get(0);
            if email_hash(&email) != bound {
                return Err(SitesError::denied(
                    "token: this invitation is for another email address",
                ));
            }
        }
        network.check_active()?;
        let site = if scope_id == network_id {
            None
        } else {
            Some(site_by_id(&*tx, scope_id).await?)
        };
        let target = Target { network, site };
        let mut changes = vec![Change::new(
            &target,
            "InvitationAccepted",
            ev::InvitationAccepted {
                invitation_id: invitation_id.to_string(),
                network_id: network_id.to_string(),
                account_id: principal.account_id.to_string(),
            },
        )];
        changes.extend(grant(&*tx, &target, principal.account_id, role, "invitation").await?);
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            changes,
        )
        .await?;
        tx.commit().await?;
        info!(%invitation_id, account_id = %principal.account_id, "invitation accepted");
        Self::membership_of(&**client, principal.account_id, &target).await
    }

    async fn membership_of<C: GenericClient>(
        client: &C,
        account_id: Uuid,
        target: &Target,
    ) -> Result<Membership, SitesError> {
        let row = client
            .query_opt(
                "SELECT m.role, m.joined_at, COALESCE(a.display_name, '') FROM memberships m \
                 LEFT JOIN accounts a ON a.id = m.account_id WHERE m.scope_id = $1 AND m.account_id = $2",
                &[&target.scope_id(), &account_id],
            )
            .await?
            .ok_or_else(|| SitesError::not_found("membership: none"))?;
        Ok(membership(
            target,
            account_id,
            row.get(2),
            role_from_i16(row.get(0)),
            row.get(1),
        ))
    }

    pub async fn join(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        message: &str,
        traceparent: Option<String>,
    ) -> Result<JoinResponse, SitesError> {
        let message = message.trim();
        if !message.is_empty() {
            anp_kit::check_text("message", message, JOIN_MESSAGE_MAX)
                .map_err(SitesError::Invalid)?;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "scope", scope, true).await?;
        let site = target.site.clone().ok_or_else(|| {
            SitesError::invalid("scope.site_slug: join a site; a network is joined by invitation")
        })?;
        target.network.check_active()?;
        if site.archived_at.is_some() {
            return Err(SitesError::Precondition(format!(
                "scope: {} is archived",
                target.describe()
            )));
        }
        if membership_at(&*tx, principal.account_id, site.id)
            .await?
            .is_some()
        {
            drop(tx);
            return Ok(JoinResponse {
                membership: Some(
                    Self::membership_of(&**client, principal.account_id, &target).await?,
                ),
                request: None,
            });
        }
        let actor = principal.account_id.to_string();
        if !site.settings.invite_only {
            let changes = grant(&*tx, &target, principal.account_id, Role::Member, "open").await?;
            record(&*tx, &actor, &traceparent, changes).await?;
            tx.commit().await?;
            info!(account_id = %principal.account_id, site = %target.describe(), "member joined");
            return Ok(JoinResponse {
                membership: Some(
                    Self::membership_of(&**client, principal.account_id, &target).await?,
                ),
                request: None,
            });
        }
        let pending = tx
            .query_opt(
                "SELECT id FROM join_requests WHERE scope_id = $1 AND account_id = $2 AND status = 'pending'",
                &[&site.id, &principal.account_id],
            )
            .await?;
        let request_id = match pending {
            Some(row) => {
                drop(tx);
                row.get(0)
            }
            None => {
                let request_id = Uuid::now_v7();
                let change = Change::new(
                    &target,
                    "JoinRequested",
                    ev::JoinRequested {
                        request_id: request_id.to_string(),
                        network_id: target.network.id.to_string(),
                        site_id: site.id.to_string(),
                        account_id: actor.clone(),
                        message: message.to_owned(),
                    },
                );
                record(&*tx, &actor, &traceparent, vec![change]).await?;
                tx.commit().await?;
                info!(%request_id, site = %target.describe(), "join requested");
                request_id
            }
        };
        Ok(JoinResponse {
            membership: None,
            request: Some(Self::join_request(&**client, request_id).await?),
        })
    }

    async fn join_request<C: GenericClient>(
        client: &C,
        request_id: Uuid,
    ) -> Result<JoinRequestInfo, SitesError> {
        let rows = client
            .query(
                &format!("{JOIN_REQUEST_SELECT} WHERE r.id = $1"),
                &[&request_id],
            )
            .await?;
        rows.first()
            .map(join_request_from_row)
            .transpose()?
            .ok_or_else(|| SitesError::not_found(format!("request_id: no request {request_id}")))
    }

    pub async fn list_join_requests(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
    ) -> Result<Vec<JoinRequestInfo>, SitesError> {
        let client = self.pool.get().await?;
        let target = resolve(&**client, "scope", scope, false).await?;
        let site = target.require_site("scope")?;
        let role = role_in(&**client, principal.account_id, &target).await?;
        target.require(role, Role::SiteAdmin)?;
        let rows = client
            .query(
                &format!("{JOIN_REQUEST_SELECT} WHERE r.scope_id = $1 AND r.status = 'pending' ORDER BY r.requested_at"),
                &[&site.id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(join_request_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn decide_join_request(
        &self,
        principal: Principal,
        request_id: &str,
        approve: bool,
        traceparent: Option<String>,
    ) -> Result<JoinRequestInfo, SitesError> {
        let request_id: Uuid = request_id.parse().map_err(|_| {
            SitesError::invalid(format!("request_id: {request_id:?} is not a UUID"))
        })?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT scope_id, account_id FROM join_requests WHERE id = $1",
                &[&request_id],
            )
            .await?
            .ok_or_else(|| SitesError::not_found(format!("request_id: no request {request_id}")))?;
        let site_id: Uuid = row.get(0);
        let account_id: Uuid = row.get(1);
        let scope = Scope {
            site_id: site_id.to_string(),
            ..Default::default()
        };
        let target = resolve(&*tx, "request_id", Some(&scope), true).await?;
        // Permission before anything else is revealed about the request.
        let role = role_in(&*tx, principal.account_id, &target).await?;
        target.require(role, Role::SiteAdmin)?;
        target.network.check_active()?;
        let status: String = tx
            .query_one(
                "SELECT status FROM join_requests WHERE id = $1",
                &[&request_id],
            )
            .await?
            .get(0);
        if status != "pending" {
            return Err(SitesError::Precondition(format!(
                "request_id: already {status}"
            )));
        }
        let mut changes = Vec::new();
        if approve {
            changes.extend(grant(&*tx, &target, account_id, Role::Member, "request").await?);
        }
        changes.push(Change::new(
            &target,
            "JoinRequestDecided",
            ev::JoinRequestDecided {
                request_id: request_id.to_string(),
                network_id: target.network.id.to_string(),
                approved: approve,
                decided_by: principal.account_id.to_string(),
            },
        ));
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            changes,
        )
        .await?;
        tx.commit().await?;
        info!(%request_id, approve, "join request decided");
        Self::join_request(&**client, request_id).await
    }

    /// Leaving is always allowed, even in a suspended network — except for
    /// the last admin of a network.
    pub async fn leave(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        traceparent: Option<String>,
    ) -> Result<(), SitesError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "scope", scope, true).await?;
        if membership_at(&*tx, principal.account_id, target.scope_id())
            .await?
            .is_none()
        {
            return Err(SitesError::not_found(format!(
                "scope: you are not a member of {}",
                target.describe()
            )));
        }
        check_not_last_admin(&*tx, &target, principal.account_id).await?;
        let change = left(&target, principal.account_id, None);
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            vec![change],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_member(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        account_id: &str,
        traceparent: Option<String>,
    ) -> Result<(), SitesError> {
        let account_id = parse_account(account_id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "scope", scope, true).await?;
        let caller = role_in(&*tx, principal.account_id, &target).await?;
        target.require(caller, target.admin_role())?;
        target.network.check_active()?;
        let current = membership_at(&*tx, account_id, target.scope_id())
            .await?
            .ok_or_else(|| {
                SitesError::not_found(format!("account_id: not a member of {}", target.describe()))
            })?;
        if current > caller {
            return Err(SitesError::denied(format!(
                "account_id: a {} cannot remove a {}",
                role_name(caller),
                role_name(current)
            )));
        }
        check_not_last_admin(&*tx, &target, account_id).await?;
        let change = left(&target, account_id, Some(principal.account_id));
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            vec![change],
        )
        .await?;
        tx.commit().await?;
        info!(%account_id, scope = %target.describe(), "member removed");
        Ok(())
    }

    pub async fn set_role(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        account_id: &str,
        role: i32,
        traceparent: Option<String>,
    ) -> Result<Membership, SitesError> {
        let account_id = parse_account(account_id)?;
        let role = crate::model::requested_role("role", role)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "scope", scope, true).await?;
        let caller = role_in(&*tx, principal.account_id, &target).await?;
        target.require(caller, target.admin_role())?;
        target.network.check_active()?;
        if role == Role::NetworkAdmin && target.site.is_some() {
            return Err(SitesError::invalid(
                "role: network_admin is a role of the network; set it on the network",
            ));
        }
        let in_network = tx
            .query_opt(
                "SELECT 1 FROM memberships WHERE network_id = $1 AND account_id = $2 LIMIT 1",
                &[&target.network.id, &account_id],
            )
            .await?;
        if in_network.is_none() {
            return Err(SitesError::not_found(format!(
                "account_id: not a member of network {}",
                target.network.slug
            )));
        }
        let current = membership_at(&*tx, account_id, target.scope_id()).await?;
        if role > caller || current.is_some_and(|current| current > caller) {
            return Err(SitesError::denied(format!(
                "role: a {} cannot grant or change a role above their own",
                role_name(caller)
            )));
        }
        let changes = match current {
            Some(current) if current == role => vec![],
            Some(current) => {
                if current == Role::NetworkAdmin {
                    check_not_last_admin(&*tx, &target, account_id).await?;
                }
                vec![Change::new(
                    &target,
                    "MemberRoleChanged",
                    ev::MemberRoleChanged {
                        account_id: account_id.to_string(),
                        network_id: target.network.id.to_string(),
                        site_id: target
                            .site
                            .as_ref()
                            .map(|s| s.id.to_string())
                            .unwrap_or_default(),
                        role: role_name(role).into(),
                        previous_role: role_name(current).into(),
                    },
                )]
            }
            None => grant(&*tx, &target, account_id, role, "granted").await?,
        };
        record(
            &*tx,
            &principal.account_id.to_string(),
            &traceparent,
            changes,
        )
        .await?;
        tx.commit().await?;
        Self::membership_of(&**client, account_id, &target).await
    }

    pub async fn list_members(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
    ) -> Result<Vec<Membership>, SitesError> {
        let client = self.pool.get().await?;
        let target = resolve(&**client, "scope", scope, false).await?;
        let role = role_in(&**client, principal.account_id, &target).await?;
        target.require(role, target.admin_role())?;
        let rows = client
            .query(
                "SELECT m.account_id, COALESCE(a.display_name, ''), m.role, m.joined_at \
                 FROM memberships m LEFT JOIN accounts a ON a.id = m.account_id \
                 WHERE m.scope_id = $1 ORDER BY m.role DESC, a.display_name",
                &[&target.scope_id()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                membership(
                    &target,
                    row.get(0),
                    row.get(1),
                    role_from_i16(row.get(2)),
                    row.get(3),
                )
            })
            .collect())
    }

    pub async fn who_am_i(&self, principal: Principal) -> Result<WhoAmIResponse, SitesError> {
        let account = self.account(principal.account_id).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT n.slug, COALESCE(s.slug, ''), m.role, m.joined_at FROM memberships m \
                 JOIN networks n ON n.id = m.network_id LEFT JOIN sites s ON s.id = m.scope_id \
                 WHERE m.account_id = $1 ORDER BY n.slug, s.slug NULLS FIRST",
                &[&principal.account_id],
            )
            .await?;
        let memberships = rows
            .iter()
            .map(|row| Membership {
                account_id: account.id.clone(),
                display_name: account.display_name.clone(),
                network_slug: row.get(0),
                site_slug: row.get(1),
                role: role_from_i16(row.get(2)) as i32,
                joined_at: Some(anp_kit::timestamp(row.get(3))),
            })
            .collect();
        // Members-only documents of a site are read by members of the site,
        // of any ancestor site and of the whole network (role inheritance).
        let readers = client
            .query(
                "SELECT m.network_id FROM memberships m \
                 WHERE m.account_id = $1 AND m.scope_id = m.network_id \
                 UNION SELECT s.id FROM memberships m JOIN sites s \
                 ON s.network_id = m.network_id AND m.scope_id = ANY(s.path) \
                 WHERE m.account_id = $1 LIMIT $2",
                &[&principal.account_id, &READER_SCOPES_MAX],
            )
            .await?;
        let networks = client
            .query(
                "SELECT DISTINCT network_id FROM memberships WHERE account_id = $1",
                &[&principal.account_id],
            )
            .await?;
        let ids = |rows: &[tokio_postgres::Row]| {
            rows.iter()
                .map(|row| row.get::<_, Uuid>(0).to_string())
                .collect()
        };
        Ok(WhoAmIResponse {
            account: Some(account),
            memberships,
            member_network_ids: ids(&networks),
            reader_scope_ids: ids(&readers),
        })
    }

    /// What the holder of `token` (or nobody) may do at `scope`: the
    /// token's signature, its session, the scope and the roles in one
    /// statement, since every request of every other service asks this.
    /// No token: the answer for nobody; a bad or ended one:
    /// `UNAUTHENTICATED`.
    pub async fn access(
        &self,
        token: Option<&str>,
        scope: Option<&Scope>,
    ) -> Result<Access, SitesError> {
        let session = token.map(|token| self.verify_token(token)).transpose()?;
        let client = self.pool.get().await?;
        let Standing {
            target,
            role,
            network_member,
        } = standing(&client, "scope", scope, session.as_ref()).await?;
        let writable = !target.network.suspended()
            && target
                .site
                .as_ref()
                .is_none_or(|site| site.archived_at.is_none());
        Ok(Access {
            network: Some(target.network.to_proto()),
            site: target.site.as_ref().map(|site| site.to_proto()),
            account_id: session
                .map(|session| session.account_id.to_string())
                .unwrap_or_default(),
            role: role as i32,
            writable,
            network_member,
        })
    }
}

fn left(target: &Target, account_id: Uuid, removed_by: Option<Uuid>) -> Change {
    Change::new(
        target,
        "MemberLeft",
        ev::MemberLeft {
            account_id: account_id.to_string(),
            network_id: target.network.id.to_string(),
            site_id: target
                .site
                .as_ref()
                .map(|s| s.id.to_string())
                .unwrap_or_default(),
            removed_by: removed_by.map(|id| id.to_string()).unwrap_or_default(),
        },
    )
}

fn parse_account(account_id: &str) -> Result<Uuid, SitesError> {
    account_id
        .parse()
        .map_err(|_| SitesError::invalid(format!("account_id: {account_id:?} is not a UUID")))
}

const JOIN_REQUEST_SELECT: &str = "SELECT r.id, r.account_id, COALESCE(a.display_name, '') AS display_name, \
     n.slug AS network_slug, s.slug AS site_slug, r.message, r.requested_at, r.status \
     FROM join_requests r JOIN networks n ON n.id = r.network_id JOIN sites s ON s.id = r.scope_id \
     LEFT JOIN accounts a ON a.id = r.account_id";

fn join_request_from_row(
    row: &tokio_postgres::Row,
) -> Result<JoinRequestInfo, tokio_postgres::Error> {
    let requested_at: DateTime<Utc> = row.try_get("requested_at")?;
    Ok(JoinRequestInfo {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        account_id: row.try_get::<_, Uuid>("account_id")?.to_string(),
        display_name: row.try_get("display_name")?,
        network_slug: row.try_get("network_slug")?,
        site_slug: row.try_get("site_slug")?,
        message: row.try_get("message")?,
        requested_at: Some(anp_kit::timestamp(requested_at)),
        status: row.try_get("status")?,
    })
}
