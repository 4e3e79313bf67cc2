//! Networks (public reads) and the tree of sites.

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::events::v1 as ev;
use anp_proto::sites::v1::{
    CreateSiteRequest, MoveSiteRequest, Network, RenameSiteRequest, Role, Scope, Site,
    SiteSettings, UpdateSiteRequest,
};
use prost::Message;
use tokio_postgres::GenericClient;
use tracing::info;
use uuid::Uuid;

use crate::access::{self, Target, network_by_slug, resolve, role_in, site_by_id, site_by_slug};
use crate::accounts::Principal;
use crate::error::SitesError;
use crate::model::{
    MAX_DEPTH, NAME_MAX, NETWORK_COLUMNS, NetworkRow, SITE_COLUMNS, SiteRow, check_settings,
};
use crate::{Sites, state};

pub fn site_stream(site_id: Uuid) -> String {
    format!("site-{site_id}")
}

/// Fails with `RESOURCE_EXHAUSTED` when one more site would pass the quota.
pub async fn check_site_quota<C: GenericClient>(
    client: &C,
    network: &NetworkRow,
) -> Result<(), SitesError> {
    let used: i64 = client
        .query_one(
            "SELECT count(*) FROM sites WHERE network_id = $1 AND archived_at IS NULL",
            &[&network.id],
        )
        .await?
        .get(0);
    if used >= network.quota_sites {
        return Err(SitesError::Quota {
            quota: "sites",
            limit: network.quota_sites,
        });
    }
    Ok(())
}

/// Height of the subtree under `site` (1: no sub-sites).
async fn subtree_height<C: GenericClient>(client: &C, site: &SiteRow) -> Result<usize, SitesError> {
    let row = client
        .query_one(
            "SELECT COALESCE(max(array_length(path, 1)), 0) FROM sites WHERE path @> ARRAY[$1]::uuid[]",
            &[&site.id],
        )
        .await?;
    let deepest: i32 = row.get(0);
    Ok((deepest as usize + 1).saturating_sub(site.depth()))
}

/// Path segments under `/n/<network>/` that name network pages, never a
/// site.
pub const RESERVED_SITE_SLUGS: &[&str] = &["events", "threads", "calendar", "feed", "pages", "api"];

fn check_site_slug(field: &str, slug: &str) -> Result<(), SitesError> {
    anp_kit::check_slug(field, slug).map_err(SitesError::Invalid)?;
    if RESERVED_SITE_SLUGS.contains(&slug) {
        return Err(SitesError::Invalid(format!(
            "{field}: {slug:?} is reserved for the network's own pages"
        )));
    }
    Ok(())
}

impl Sites {
    pub async fn get_network(&self, slug: &str) -> Result<Network, SitesError> {
        let client = self.pool.get().await?;
        Ok(network_by_slug(&**client, slug, false).await?.to_proto())
    }

    pub async fn list_networks(&self) -> Result<Vec<Network>, SitesError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {NETWORK_COLUMNS} FROM networks n ORDER BY n.slug"),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(NetworkRow::from_row(row)?.to_proto()))
            .collect()
    }

    pub async fn get_site_by_id(&self, site_id: &str) -> Result<Site, SitesError> {
        let id: Uuid = site_id
            .parse()
            .map_err(|_| SitesError::invalid(format!("site_id: {site_id:?} is not a UUID")))?;
        let client = self.pool.get().await?;
        Ok(site_by_id(&**client, id).await?.to_proto())
    }

    pub async fn get_site_by_slugs(
        &self,
        network_slug: &str,
        site_slug: &str,
    ) -> Result<Site, SitesError> {
        let client = self.pool.get().await?;
        let network = network_by_slug(&**client, network_slug, false).await?;
        Ok(site_by_slug(&**client, &network, "site_slug", site_slug)
            .await?
            .to_proto())
    }

    pub async fn list_sites(
        &self,
        network_slug: &str,
        include_archived: bool,
    ) -> Result<Vec<Site>, SitesError> {
        let client = self.pool.get().await?;
        let archived = if include_archived {
            ""
        } else {
            " AND s.archived_at IS NULL"
        };
        let rows = if network_slug.is_empty() {
            client
                .query(
                    &format!(
                        "SELECT {SITE_COLUMNS} FROM sites s JOIN networks n ON n.id = s.network_id \
                         WHERE true{archived} ORDER BY n.slug, s.path"
                    ),
                    &[],
                )
                .await?
        } else {
            let network = network_by_slug(&**client, network_slug, false).await?;
            client
                .query(
                    &format!(
                        "SELECT {SITE_COLUMNS} FROM sites s JOIN networks n ON n.id = s.network_id \
                         WHERE s.network_id = $1{archived} ORDER BY s.slug"
                    ),
                    &[&network.id],
                )
                .await?
        };
        rows.iter()
            .map(|row| Ok(SiteRow::from_row(row)?.to_proto()))
            .collect()
    }

    pub async fn create_site(
        &self,
        principal: Principal,
        request: &CreateSiteRequest,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        check_site_slug("slug", &request.slug)?;
        let mut settings = request.settings.clone().unwrap_or_else(|| SiteSettings {
            languages: vec!["en".into()],
            ..Default::default()
        });
        if !request.name.trim().is_empty() || settings.name.trim().is_empty() {
            anp_kit::check_text("name", &request.name, NAME_MAX).map_err(SitesError::Invalid)?;
            settings.name = request.name.clone();
        }
        let settings = check_settings(&settings)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let network = network_by_slug(&*tx, &request.network_slug, true).await?;
        network.check_active()?;
        let parent = if request.parent_site_slug.is_empty() {
            None
        } else {
            Some(
                site_by_slug(
                    &*tx,
                    &network,
                    "parent_site_slug",
                    &request.parent_site_slug,
                )
                .await?,
            )
        };
        let target = Target {
            network: network.clone(),
            site: parent.clone(),
        };
        let role = role_in(&*tx, principal.account_id, &target).await?;
        target.require(role, target.admin_role())?;
        if let Some(parent) = &parent {
            if parent.archived_at.is_some() {
                return Err(SitesError::Precondition(format!(
                    "parent_site_slug: {:?} is archived",
                    parent.slug
                )));
            }
            if parent.depth() + 1 > MAX_DEPTH {
                return Err(SitesError::invalid(format!(
                    "parent_site_slug: sites nest at most {MAX_DEPTH} deep"
                )));
            }
        }
        check_site_quota(&*tx, &network).await?;
        let site_id = Uuid::now_v7();
        let payload = ev::SiteCreated {
            site_id: site_id.to_string(),
            network_id: network.id.to_string(),
            network_slug: network.slug.clone(),
            slug: request.slug.clone(),
            name: settings.name.clone(),
            parent_site_id: parent.map(|p| p.id.to_string()).unwrap_or_default(),
            settings: Some(settings),
        };
        let event = NewEvent::new(
            "SiteCreated",
            network.id,
            &principal.account_id.to_string(),
            payload.encode_to_vec(),
        )
        .with_site(site_id)
        .with_traceparent(traceparent);
        state::commit(
            &*tx,
            &site_stream(site_id),
            ExpectedVersion::NoStream,
            vec![event],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|err| crate::error::conflict_or_db(err, "slug"))?;
        info!(%site_id, network = %network.slug, slug = %request.slug, "site created");
        // The same connection: never wait on the pool while holding one.
        Ok(site_by_id(&**client, site_id).await?.to_proto())
    }

    /// Runs a change of one site: resolves and locks it, checks the network
    /// is active and the caller administers the site, then commits the event
    /// `decide` returns (none: nothing to change).
    async fn change_site<F>(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        traceparent: Option<String>,
        decide: F,
    ) -> Result<Site, SitesError>
    where
        F: AsyncFnOnce(
            &tokio_postgres::Transaction<'_>,
            &Target,
            &SiteRow,
        ) -> Result<Option<(&'static str, Vec<u8>)>, SitesError>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let target = resolve(&*tx, "site", scope, true).await?;
        let site = target.require_site("site")?.clone();
        target.network.check_active()?;
        let role = role_in(&*tx, principal.account_id, &target).await?;
        target.require(role, Role::SiteAdmin)?;
        if let Some((event_type, payload)) = decide(&tx, &target, &site).await? {
            let event = NewEvent::new(
                event_type,
                target.network.id,
                &principal.account_id.to_string(),
                payload,
            )
            .with_site(site.id)
            .with_traceparent(traceparent);
            state::commit(
                &*tx,
                &site_stream(site.id),
                ExpectedVersion::Any,
                vec![event],
            )
            .await?;
            tx.commit()
                .await
                .map_err(|err| crate::error::conflict_or_db(err, "site"))?;
            info!(site_id = %site.id, event_type, "site changed");
        } else {
            drop(tx);
        }
        Ok(site_by_id(&**client, site.id).await?.to_proto())
    }

    pub async fn update_site(
        &self,
        principal: Principal,
        request: &UpdateSiteRequest,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        let settings = request
            .settings
            .as_ref()
            .ok_or_else(|| SitesError::invalid("settings: missing"))?;
        let settings = check_settings(settings)?;
        self.change_site(
            principal,
            request.site.as_ref(),
            traceparent,
            async |_, target, site| {
                if site.archived_at.is_some() {
                    return Err(SitesError::Precondition(format!(
                        "site: {} is archived; restore it first",
                        target.describe()
                    )));
                }
                Ok(Some((
                    "SiteSettingsChanged",
                    ev::SiteSettingsChanged {
                        site_id: site.id.to_string(),
                        network_id: site.network_id.to_string(),
                        settings: Some(settings),
                    }
                    .encode_to_vec(),
                )))
            },
        )
        .await
    }

    pub async fn rename_site(
        &self,
        principal: Principal,
        request: &RenameSiteRequest,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        check_site_slug("new_slug", &request.new_slug)?;
        let new_name = request.new_name.trim().to_owned();
        if !new_name.is_empty() {
            anp_kit::check_text("new_name", &new_name, NAME_MAX).map_err(SitesError::Invalid)?;
        }
        self.change_site(
            principal,
            request.site.as_ref(),
            traceparent,
            async |tx, _, site| {
                if site.slug == request.new_slug && (new_name.is_empty() || new_name == site.name) {
                    return Ok(None);
                }
                if site.slug != request.new_slug {
                    let taken = tx
                        .query_opt(
                            "SELECT 1 FROM sites WHERE network_id = $1 AND slug = $2",
                            &[&site.network_id, &request.new_slug],
                        )
                        .await?;
                    if taken.is_some() {
                        return Err(SitesError::Taken {
                            field: "new_slug",
                            value: request.new_slug.clone(),
                        });
                    }
                }
                Ok(Some((
                    "SiteRenamed",
                    ev::SiteRenamed {
                        site_id: site.id.to_string(),
                        network_id: site.network_id.to_string(),
                        slug: request.new_slug.clone(),
                        previous_slug: site.slug.clone(),
                        name: new_name,
                    }
                    .encode_to_vec(),
                )))
            },
        )
        .await
    }

    pub async fn move_site(
        &self,
        principal: Principal,
        request: &MoveSiteRequest,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        self.change_site(principal, request.site.as_ref(), traceparent, async |tx, target, site| {
            let parent = if request.new_parent_site_slug.is_empty() {
                None
            } else {
                Some(
                    site_by_slug(
                        tx,
                        &target.network,
                        "new_parent_site_slug",
                        &request.new_parent_site_slug,
                    )
                    .await?,
                )
            };
            if parent.as_ref().map(|p| p.id) == site.parent_id {
                return Ok(None);
            }
            let destination = Target {
                network: target.network.clone(),
                site: parent.clone(),
            };
            let role = role_in(tx, principal.account_id, &destination).await?;
            destination.require(role, destination.admin_role())?;
            if let Some(parent) = &parent {
                if parent.path.contains(&site.id) {
                    return Err(SitesError::invalid(
                        "new_parent_site_slug: a site cannot move under itself or its own sub-site",
                    ));
                }
                if parent.archived_at.is_some() {
                    return Err(SitesError::Precondition(format!(
                        "new_parent_site_slug: {:?} is archived",
                        parent.slug
                    )));
                }
                let height = subtree_height(tx, site).await?;
                if parent.depth() + height > MAX_DEPTH {
                    return Err(SitesError::invalid(format!(
                        "new_parent_site_slug: sites nest at most {MAX_DEPTH} deep"
                    )));
                }
            }
            Ok(Some((
                "SiteMoved",
                ev::SiteMoved {
                    site_id: site.id.to_string(),
                    network_id: site.network_id.to_string(),
                    parent_site_id: parent.map(|p| p.id.to_string()).unwrap_or_default(),
                    previous_parent_site_id: site
                        .parent_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }

    pub async fn archive_site(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        self.change_site(principal, scope, traceparent, async |tx, _, site| {
            if site.archived_at.is_some() {
                return Ok(None);
            }
            let live_children = tx
                .query_opt(
                    "SELECT slug FROM sites WHERE parent_id = $1 AND archived_at IS NULL LIMIT 1",
                    &[&site.id],
                )
                .await?;
            if let Some(child) = live_children {
                return Err(SitesError::Precondition(format!(
                    "site: its sub-site {:?} is active; archive or move it first",
                    child.get::<_, String>(0)
                )));
            }
            Ok(Some((
                "SiteArchived",
                ev::SiteArchived {
                    site_id: site.id.to_string(),
                    network_id: site.network_id.to_string(),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }

    pub async fn restore_site(
        &self,
        principal: Principal,
        scope: Option<&Scope>,
        traceparent: Option<String>,
    ) -> Result<Site, SitesError> {
        self.change_site(principal, scope, traceparent, async |tx, target, site| {
            if site.archived_at.is_none() {
                return Ok(None);
            }
            if let Some(parent_id) = site.parent_id {
                let parent = access::site_by_id(tx, parent_id).await?;
                if parent.archived_at.is_some() {
                    return Err(SitesError::Precondition(format!(
                        "site: its parent {:?} is archived; restore it first",
                        parent.slug
                    )));
                }
            }
            check_site_quota(tx, &target.network).await?;
            Ok(Some((
                "SiteRestored",
                ev::SiteRestored {
                    site_id: site.id.to_string(),
                    network_id: site.network_id.to_string(),
                }
                .encode_to_vec(),
            )))
        })
        .await
    }
}
