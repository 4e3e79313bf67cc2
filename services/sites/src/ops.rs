//! The cooperative's side: onboarding, plans and quotas, suspension, scoped
//! ops tokens and the audit log.

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::events::v1 as ev;
use anp_proto::ops::v1::{
    AuditEntry, NetworkDetails, OnboardNetworkRequest, OnboardNetworkResponse, Quotas, TokenInfo,
    Usage,
};
use anp_proto::sites::v1::{Invitation, Role};
use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use tracing::info;
use uuid::Uuid;

use crate::access::{Target, network_by_slug};
use crate::accounts::normalize_email;
use crate::error::SitesError;
use crate::model::{NAME_MAX, NETWORK_COLUMNS, NetworkRow};
use crate::people::{Change, network_stream, record};
use crate::{Sites, state};

pub const IDEMPOTENCY_KEY_MAX: usize = 128;
pub const NOTICE_MAX: usize = 500;
pub const ADMIN_INVITATION_TTL_HOURS: u32 = 720;
const GIB: i64 = 1024 * 1024 * 1024;
/// No quota may exceed this (every size has a limit).
pub const QUOTA_MAX: i64 = 1 << 50;

/// Every scope an ops token can hold.
pub const SCOPES: &[&str] = &[
    "networks:read",
    "networks:write",
    "networks:suspend",
    "networks:export",
    "networks:offboard",
    "audit:read",
    "usage:read",
    "tokens:admin",
    "projections:rebuild",
];

/// The plans and their quotas: (name, sites, members, storage bytes).
pub const PLANS: &[(&str, i64, i64, i64)] = &[
    ("small", 10, 200, 5 * GIB),
    ("standard", 50, 2_000, 50 * GIB),
    ("large", 500, 20_000, 500 * GIB),
];

fn plan_quotas(plan: &str) -> Result<ev::Quotas, SitesError> {
    PLANS
        .iter()
        .find(|(name, ..)| *name == plan)
        .map(|&(_, sites, members, storage_bytes)| ev::Quotas {
            sites,
            members,
            storage_bytes,
        })
        .ok_or_else(|| {
            let names: Vec<&str> = PLANS.iter().map(|(name, ..)| *name).collect();
            SitesError::invalid(format!("plan: {plan:?} is not one of {}", names.join(", ")))
        })
}

/// The plan's quotas with the request's overrides; each override must be
/// between 0 and [`QUOTA_MAX`].
fn resolve_quotas(base: ev::Quotas, overrides: Option<&Quotas>) -> Result<ev::Quotas, SitesError> {
    let Some(overrides) = overrides else {
        return Ok(base);
    };
    let check = |field: &str, value: Option<i64>, default: i64| match value {
        None => Ok(default),
        Some(value) if (0..=QUOTA_MAX).contains(&value) => Ok(value),
        Some(value) => Err(SitesError::invalid(format!(
            "quotas.{field}: {value} is not between 0 and {QUOTA_MAX}"
        ))),
    };
    Ok(ev::Quotas {
        sites: check("sites", overrides.sites, base.sites)?,
        members: check("members", overrides.members, base.members)?,
        storage_bytes: check("storage_bytes", overrides.storage_bytes, base.storage_bytes)?,
    })
}

/// Who called the ops API.
#[derive(Debug, Clone)]
pub struct Operator {
    pub token_name: String,
    pub scopes: Vec<String>,
}

impl Operator {
    pub fn require(&self, scope: &str) -> Result<(), SitesError> {
        if self.scopes.iter().any(|s| s == scope || s == "*") {
            return Ok(());
        }
        Err(SitesError::denied(format!(
            "authorization: token {:?} lacks the scope {scope}",
            self.token_name
        )))
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

async fn usage_of<C: GenericClient>(client: &C, network_id: Uuid) -> Result<Usage, SitesError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM sites WHERE network_id = $1 AND archived_at IS NULL), \
                    (SELECT count(DISTINCT account_id) FROM memberships WHERE network_id = $1)",
            &[&network_id],
        )
        .await?;
    Ok(Usage {
        sites: row.get(0),
        members: row.get(1),
        storage_bytes: 0,
    })
}

fn details(network: &NetworkRow, usage: Usage) -> NetworkDetails {
    NetworkDetails {
        network: Some(network.to_proto()),
        plan: network.plan.clone(),
        quotas: Some(Quotas {
            sites: Some(network.quota_sites),
            members: Some(network.quota_members),
            storage_bytes: Some(network.quota_storage_bytes),
        }),
        usage: Some(usage),
        suspended_at: network.suspended_at.map(anp_kit::timestamp),
    }
}

impl Sites {
    /// The operator an ops bearer token belongs to: the bootstrap token from
    /// `ANP_OPS_TOKEN` holds every scope; others are looked up by hash.
    pub async fn operator(&self, token: Option<&str>) -> Result<Operator, SitesError> {
        let token = token.filter(|token| !token.is_empty()).ok_or_else(|| {
            SitesError::Unauthenticated("authorization: missing bearer token".into())
        })?;
        if self.ops_token.matches(token) {
            return Ok(Operator {
                token_name: "bootstrap".into(),
                scopes: vec!["*".into()],
            });
        }
        if token.len() > 256 {
            return Err(SitesError::Unauthenticated(
                "authorization: invalid bearer token".into(),
            ));
        }
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT name, scopes FROM ops_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&token_hash(token)],
            )
            .await?
            .ok_or_else(|| {
                SitesError::Unauthenticated("authorization: invalid bearer token".into())
            })?;
        Ok(Operator {
            token_name: row.get(0),
            scopes: row.get(1),
        })
    }

    /// Writes one line of the audit log; never fails the call it records.
    pub async fn audit(
        &self,
        token_name: &str,
        action: &str,
        network_slug: &str,
        outcome: &str,
        detail: &str,
    ) {
        let result = async {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO audit_log (token_name, action, network_slug, outcome, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&token_name, &action, &network_slug, &outcome, &detail],
                )
                .await?;
            Ok::<_, SitesError>(())
        }
        .await;
        if let Err(err) = result {
            tracing::error!(error = %err, action, "audit log write failed");
        }
    }

    pub async fn list_audit(
        &self,
        network_slug: &str,
        before_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, SitesError> {
        if !network_slug.is_empty() {
            anp_kit::check_slug("network_slug", network_slug).map_err(SitesError::Invalid)?;
        }
        if limit > 500 {
            return Err(SitesError::invalid("limit: at most 500"));
        }
        if before_id < 0 {
            return Err(SitesError::invalid("before_id: must not be negative"));
        }
        let limit = if limit == 0 { 50 } else { i64::from(limit) };
        let before = if before_id == 0 { i64::MAX } else { before_id };
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, at, token_name, action, network_slug, outcome, detail FROM audit_log \
                 WHERE id < $1 AND ($2 = '' OR network_slug = $2) ORDER BY id DESC LIMIT $3",
                &[&before, &network_slug, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| AuditEntry {
                id: row.get(0),
                at: Some(anp_kit::timestamp(row.get(1))),
                token_name: row.get(2),
                action: row.get(3),
                network_slug: row.get(4),
                outcome: row.get(5),
                detail: row.get(6),
            })
            .collect())
    }

    pub async fn create_token(
        &self,
        name: &str,
        scopes: &[String],
    ) -> Result<(String, TokenInfo), SitesError> {
        anp_kit::check_slug("name", name).map_err(SitesError::Invalid)?;
        if name == "bootstrap" {
            return Err(SitesError::invalid("name: \"bootstrap\" is reserved"));
        }
        if scopes.is_empty() {
            return Err(SitesError::invalid(format!(
                "scopes: name at least one of {} or \"*\"",
                SCOPES.join(", ")
            )));
        }
        let mut checked: Vec<String> = Vec::new();
        for scope in scopes {
            if scope != "*" && !SCOPES.contains(&scope.as_str()) {
                return Err(SitesError::invalid(format!(
                    "scopes: {scope:?} is not one of {} or \"*\"",
                    SCOPES.join(", ")
                )));
            }
            if !checked.contains(scope) {
                checked.push(scope.clone());
            }
        }
        let secret: [u8; 32] = rand::random();
        let token = format!(
            "anp_ops_{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret)
        );
        let id = Uuid::now_v7();
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO ops_tokens (id, name, scopes, token_hash) VALUES ($1, $2, $3, $4) \
                 RETURNING created_at",
                &[&id, &name, &checked, &token_hash(&token)],
            )
            .await
            .map_err(|err| crate::error::taken_or_db(err, "name", name))?;
        let created_at: DateTime<Utc> = row.get(0);
        Ok((
            token,
            TokenInfo {
                id: id.to_string(),
                name: name.to_owned(),
                scopes: checked,
                created_at: Some(anp_kit::timestamp(created_at)),
                revoked_at: None,
            },
        ))
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, SitesError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, name, scopes, created_at, revoked_at FROM ops_tokens ORDER BY created_at",
                &[],
            )
            .await?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, SitesError> {
        let id: Uuid = id
            .parse()
            .map_err(|_| SitesError::invalid(format!("id: {id:?} is not a UUID")))?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE ops_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 \
                 RETURNING id, name, scopes, created_at, revoked_at",
                &[&id],
            )
            .await?
            .ok_or_else(|| SitesError::not_found(format!("id: no token {id}")))?;
        Ok(token_from_row(&row))
    }

    /// Onboards a network with its plan and an invitation for its first
    /// admin. A retry with the same idempotency key (or, without one, the same
    /// slug) returns what the first call made, the same invitation token
    /// included (`created` = false).
    pub async fn onboard_network(
        &self,
        request: &OnboardNetworkRequest,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<OnboardNetworkResponse, SitesError> {
        let slug = request.slug.as_str();
        anp_kit::check_slug("slug", slug).map_err(SitesError::Invalid)?;
        anp_kit::check_text("name", &request.name, NAME_MAX).map_err(SitesError::Invalid)?;
        let admin_email = normalize_email(&request.admin_email).map_err(|_| {
            SitesError::invalid("admin_email: not an email address such as ana@example.org")
        })?;
        let plan = if request.plan.is_empty() {
            "small"
        } else {
            request.plan.as_str()
        };
        let quotas = resolve_quotas(plan_quotas(plan)?, request.quotas.as_ref())?;
        let key = if request.idempotency_key.is_empty() {
            format!("slug:{slug}")
        } else {
            if request.idempotency_key.len() > IDEMPOTENCY_KEY_MAX {
                return Err(SitesError::invalid(format!(
                    "idempotency_key: at most {IDEMPOTENCY_KEY_MAX} bytes"
                )));
            }
            format!("key:{}", request.idempotency_key)
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One onboarding per key and per slug at a time; the loser of a race
        // sees the winner's rows once it gets the lock.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('anp-onboard-key:' || $1)), \
                    pg_advisory_xact_lock(hashtext('anp-onboard-slug:' || $2))",
            &[&key, &slug],
        )
        .await?;
        if let Some(row) = tx
            .query_opt(
                "SELECT network_id, invitation_id FROM network_idempotency WHERE key = $1",
                &[&key],
            )
            .await?
        {
            let network_id: Uuid = row.get(0);
            let invitation_id: Option<Uuid> = row.get(1);
            drop(tx);
            return self
                .onboarded(&**client, network_id, invitation_id, false)
                .await;
        }
        if tx
            .query_opt("SELECT 1 FROM networks WHERE slug = $1", &[&slug])
            .await?
            .is_some()
        {
            return Err(SitesError::Taken {
                field: "slug",
                value: slug.to_owned(),
            });
        }
        let network_id = Uuid::now_v7();
        let onboarded = NewEvent::new(
            "NetworkOnboarded",
            network_id,
            actor,
            ev::NetworkOnboarded {
                network_id: network_id.to_string(),
                slug: slug.to_owned(),
                name: request.name.trim().to_owned(),
                plan: plan.to_owned(),
                quotas: Some(quotas),
            }
            .encode_to_vec(),
        )
        .with_traceparent(traceparent.clone());
        state::commit(
            &*tx,
            &network_stream(network_id),
            ExpectedVersion::NoStream,
            vec![onboarded],
        )
        .await?;
        let network = crate::access::network_by_id(&*tx, network_id, false).await?;
        let target = Target {
            network,
            site: None,
        };
        let invitation_id = Uuid::now_v7();
        let (change, _) = Self::invitation_change(
            &target,
            invitation_id,
            Role::NetworkAdmin,
            ADMIN_INVITATION_TTL_HOURS,
            Some(&admin_email),
        );
        record(&*tx, actor, &traceparent, vec![change]).await?;
        tx.execute(
            "INSERT INTO network_idempotency (key, network_id, invitation_id) VALUES ($1, $2, $3)",
            &[&key, &network_id, &invitation_id],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|err| crate::error::conflict_or_db(err, "slug"))?;
        info!(%network_id, slug, plan, "network onboarded");
        self.onboarded(&**client, network_id, Some(invitation_id), true)
            .await
    }

    async fn onboarded<C: GenericClient + anp_eventstore::Statements>(
        &self,
        client: &C,
        network_id: Uuid,
        invitation_id: Option<Uuid>,
        created: bool,
    ) -> Result<OnboardNetworkResponse, SitesError> {
        let network = crate::access::network_by_id(client, network_id, false).await?;
        let admin_invitation = match invitation_id {
            Some(id) => self.stored_invitation(client, id, &network).await?,
            None => None,
        };
        let usage = usage_of(client, network_id).await?;
        Ok(OnboardNetworkResponse {
            network: Some(network.to_proto()),
            created,
            admin_invitation,
            details: Some(details(&network, usage)),
        })
    }

    async fn stored_invitation<C: GenericClient>(
        &self,
        client: &C,
        invitation_id: Uuid,
        network: &NetworkRow,
    ) -> Result<Option<Invitation>, SitesError> {
        let row = client
            .query_opt(
                "SELECT role, expires_at FROM invitations WHERE id = $1",
                &[&invitation_id],
            )
            .await?;
        Ok(row.map(|row| {
            let target = Target {
                network: network.clone(),
                site: None,
            };
            self.invitation_proto(
                invitation_id,
                &target,
                crate::model::role_from_i16(row.get(0)),
                row.get(1),
            )
        }))
    }

    pub async fn network_details(&self, slug: &str) -> Result<NetworkDetails, SitesError> {
        let client = self.pool.get().await?;
        let mut details = vec![details_of(&**client, slug).await?];
        drop(client);
        self.add_stored_bytes(&mut details).await;
        Ok(details.remove(0))
    }

    /// Fills in stored bytes from the aggregator's meters (as of today). When
    /// the aggregator does not answer, they stay 0 and a warning is logged:
    /// the rest of the answer is still worth having.
    async fn add_stored_bytes(&self, details: &mut [NetworkDetails]) {
        let today = Utc::now().date_naive().to_string();
        let answer = self
            .aggregator
            .clone()
            .usage_days(anp_proto::aggregator::v1::UsageDaysRequest {
                from_day: today.clone(),
                to_day: today,
            })
            .await;
        let days = match answer {
            Ok(response) => response.into_inner().days,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "stored bytes unavailable");
                return;
            }
        };
        for detail in details.iter_mut() {
            let id = detail
                .network
                .as_ref()
                .map(|n| n.id.clone())
                .unwrap_or_default();
            if let (Some(day), Some(usage)) = (
                days.iter().find(|d| d.network_id == id),
                detail.usage.as_mut(),
            ) {
                usage.storage_bytes = day.stored_bytes as i64;
            }
        }
    }

    pub async fn list_network_details(&self) -> Result<Vec<NetworkDetails>, SitesError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {NETWORK_COLUMNS}, \
                       (SELECT count(*) FROM sites s WHERE s.network_id = n.id AND s.archived_at IS NULL) AS used_sites, \
                       (SELECT count(DISTINCT account_id) FROM memberships m WHERE m.network_id = n.id) AS used_members \
                     FROM networks n ORDER BY n.slug"
                ),
                &[],
            )
            .await?;
        let mut list = rows
            .iter()
            .map(|row| {
                let network = NetworkRow::from_row(row)?;
                let usage = Usage {
                    sites: row.try_get("used_sites")?,
                    members: row.try_get("used_members")?,
                    storage_bytes: 0,
                };
                Ok(details(&network, usage))
            })
            .collect::<Result<Vec<_>, SitesError>>()?;
        drop(client);
        self.add_stored_bytes(&mut list).await;
        Ok(list)
    }

    /// Runs an ops change of one network: locks it, lets `decide` pick the
    /// event (none: nothing to change), commits it to the network's stream.
    async fn change_network<F>(
        &self,
        slug: &str,
        actor: &str,
        traceparent: Option<String>,
        decide: F,
    ) -> Result<NetworkDetails, SitesError>
    where
        F: FnOnce(&NetworkRow) -> Result<Option<(&'static str, Vec<u8>)>, SitesError>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let network = network_by_slug(&*tx, slug, true).await?;
        if let Some((event_type, payload)) = decide(&network)? {
            let event =
                NewEvent::new(event_type, network.id, actor, payload).with_traceparent(traceparent);
            state::commit(
                &*tx,
                &network_stream(network.id),
                ExpectedVersion::Any,
                vec![event],
            )
            .await?;
            tx.commit().await?;
            info!(network = slug, event_type, "network changed");
        } else {
            drop(tx);
        }
        details_of(&**client, slug).await
    }

    pub async fn change_plan(
        &self,
        slug: &str,
        plan: &str,
        quotas: Option<&Quotas>,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<NetworkDetails, SitesError> {
        if !plan.is_empty() {
            plan_quotas(plan)?;
        }
        let (plan, quotas) = (plan.to_owned(), quotas.cloned());
        self.change_network(slug, actor, traceparent, move |network| {
            let plan = if plan.is_empty() {
                network.plan.clone()
            } else {
                plan
            };
            // A new plan starts from its own quotas; the same plan keeps the
            // network's current ones. Overrides apply on top.
            let base = if plan == network.plan {
                ev::Quotas {
                    sites: network.quota_sites,
                    members: network.quota_members,
                    storage_bytes: network.quota_storage_bytes,
                }
            } else {
                plan_quotas(&plan)?
            };
            let quotas = resolve_quotas(base, quotas.as_ref())?;
            Ok(Some((
                "NetworkPlanChanged",
                ev::NetworkPlanChanged {
                    network_id: network.id.to_string(),
                    plan,
                    quotas: Some(quotas),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }

    pub async fn suspend_network(
        &self,
        slug: &str,
        notice: &str,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<NetworkDetails, SitesError> {
        let notice = notice.trim();
        let notice = if notice.is_empty() {
            "This network is suspended. Its pages can still be read; nothing can be changed for now."
        } else {
            anp_kit::check_text("notice", notice, NOTICE_MAX).map_err(SitesError::Invalid)?;
            notice
        };
        self.change_network(slug, actor, traceparent, |network| {
            if network.suspended() && network.notice == notice {
                return Ok(None);
            }
            Ok(Some((
                "NetworkSuspended",
                ev::NetworkSuspended {
                    network_id: network.id.to_string(),
                    notice: notice.to_owned(),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }

    pub async fn resume_network(
        &self,
        slug: &str,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<NetworkDetails, SitesError> {
        self.change_network(slug, actor, traceparent, |network| {
            if !network.suspended() {
                return Ok(None);
            }
            Ok(Some((
                "NetworkResumed",
                ev::NetworkResumed {
                    network_id: network.id.to_string(),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }

    pub async fn invite_admin(
        &self,
        slug: &str,
        email: &str,
        ttl_hours: u32,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<Invitation, SitesError> {
        let email = normalize_email(email)?;
        let ttl_hours = match ttl_hours {
            0 => ADMIN_INVITATION_TTL_HOURS,
            hours if hours <= ADMIN_INVITATION_TTL_HOURS => hours,
            _ => {
                return Err(SitesError::invalid(format!(
                    "ttl_hours: at most {ADMIN_INVITATION_TTL_HOURS} (30 days)"
                )));
            }
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let network = network_by_slug(&*tx, slug, true).await?;
        let target = Target {
            network,
            site: None,
        };
        let invitation_id = Uuid::now_v7();
        let (change, expires_at): (Change, _) = Self::invitation_change(
            &target,
            invitation_id,
            Role::NetworkAdmin,
            ttl_hours,
            Some(&email),
        );
        record(&*tx, actor, &traceparent, vec![change]).await?;
        tx.commit().await?;
        Ok(self.invitation_proto(invitation_id, &target, Role::NetworkAdmin, expires_at))
    }
}

async fn details_of<C: GenericClient + anp_eventstore::Statements>(
    client: &C,
    slug: &str,
) -> Result<NetworkDetails, SitesError> {
    let network = network_by_slug(client, slug, false).await?;
    let usage = usage_of(client, network.id).await?;
    Ok(details(&network, usage))
}

fn token_from_row(row: &tokio_postgres::Row) -> TokenInfo {
    let created_at: DateTime<Utc> = row.get(3);
    let revoked_at: Option<DateTime<Utc>> = row.get(4);
    TokenInfo {
        id: row.get::<_, Uuid>(0).to_string(),
        name: row.get(1),
        scopes: row.get(2),
        created_at: Some(anp_kit::timestamp(created_at)),
        revoked_at: revoked_at.map(anp_kit::timestamp),
    }
}
