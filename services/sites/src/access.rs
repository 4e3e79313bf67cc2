//! Finding the network or site a request names, and the caller's role there.

use std::sync::LazyLock;

use anp_eventstore::Statements;
use anp_proto::sites::v1::{Role, Scope};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::error::SitesError;
use crate::model::{
    NETWORK_COLUMNS, NetworkRow, SITE_COLUMNS, SITE_COLUMNS_AS_SITE, SiteRow, role_from_i16,
    role_name,
};

/// A network, or a site with its network.
#[derive(Debug, Clone)]
pub struct Target {
    pub network: NetworkRow,
    pub site: Option<SiteRow>,
}

impl Target {
    /// The id memberships of this scope are recorded under.
    pub fn scope_id(&self) -> Uuid {
        self.site.as_ref().map_or(self.network.id, |site| site.id)
    }

    /// The scopes whose roles hold here: the network, then each ancestor site
    /// and the site itself.
    pub fn role_scopes(&self) -> Vec<Uuid> {
        let mut scopes = vec![self.network.id];
        if let Some(site) = &self.site {
            scopes.extend(site.path.iter().copied());
        }
        scopes
    }

    pub fn site_slug(&self) -> &str {
        self.site.as_ref().map_or("", |site| site.slug.as_str())
    }

    /// "network boston" or "site climate-ny/boston", for messages.
    pub fn describe(&self) -> String {
        match &self.site {
            Some(site) => format!("site {}/{}", self.network.slug, site.slug),
            None => format!("network {}", self.network.slug),
        }
    }

    pub fn require_site(&self, field: &str) -> Result<&SiteRow, SitesError> {
        self.site.as_ref().ok_or_else(|| {
            SitesError::invalid(format!("{field}: name a site (site_slug or site_id)"))
        })
    }

    /// Fails unless `role` reaches `needed` here.
    pub fn require(&self, role: Role, needed: Role) -> Result<(), SitesError> {
        if role >= needed {
            return Ok(());
        }
        Err(SitesError::denied(format!(
            "permission: this needs the {} role in {}",
            role_name(needed),
            self.describe()
        )))
    }

    /// The role that administers this scope.
    pub fn admin_role(&self) -> Role {
        if self.site.is_some() {
            Role::SiteAdmin
        } else {
            Role::NetworkAdmin
        }
    }
}

pub async fn network_by_slug<S: Statements>(
    client: &S,
    slug: &str,
    lock: bool,
) -> Result<NetworkRow, SitesError> {
    anp_kit::check_slug("network_slug", slug).map_err(SitesError::Invalid)?;
    let sql = format!(
        "SELECT {NETWORK_COLUMNS} FROM networks n WHERE n.slug = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let statement = client.statement(&sql).await?;
    let row = client
        .client()
        .query_opt(&statement, &[&slug])
        .await?
        .ok_or_else(|| SitesError::not_found(format!("network_slug: no network {slug:?}")))?;
    Ok(NetworkRow::from_row(&row)?)
}

pub async fn network_by_id<S: Statements>(
    client: &S,
    id: Uuid,
    lock: bool,
) -> Result<NetworkRow, SitesError> {
    let sql = format!(
        "SELECT {NETWORK_COLUMNS} FROM networks n WHERE n.id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let statement = client.statement(&sql).await?;
    let row = client
        .client()
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| SitesError::not_found(format!("network: no network {id}")))?;
    Ok(NetworkRow::from_row(&row)?)
}

pub async fn site_by_id<S: Statements>(client: &S, id: Uuid) -> Result<SiteRow, SitesError> {
    let statement = client
        .statement(&format!(
            "SELECT {SITE_COLUMNS} FROM sites s JOIN networks n ON n.id = s.network_id WHERE s.id = $1"
        ))
        .await?;
    let row = client
        .client()
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| SitesError::not_found(format!("site_id: no site {id}")))?;
    Ok(SiteRow::from_row(&row)?)
}

/// The id of the site of network `network` with slug `slug` (SQL
/// expressions), or of the site that had it before a rename.
fn site_id_by_slug(network: &str, slug: &str) -> String {
    format!(
        "COALESCE( \
           (SELECT id FROM sites WHERE network_id = {network} AND slug = {slug}), \
           (SELECT site_id FROM site_aliases WHERE network_id = {network} AND slug = {slug}))"
    )
}

/// A site by its slug in a network, or by a former slug of a renamed site.
pub async fn site_by_slug<S: Statements>(
    client: &S,
    network: &NetworkRow,
    field: &str,
    slug: &str,
) -> Result<SiteRow, SitesError> {
    anp_kit::check_slug(field, slug).map_err(SitesError::Invalid)?;
    let statement = client
        .statement(&format!(
            "SELECT {SITE_COLUMNS} FROM sites s JOIN networks n ON n.id = s.network_id \
             WHERE s.network_id = $1 AND s.id = {}",
            site_id_by_slug("$1", "$2")
        ))
        .await?;
    let row = client
        .client()
        .query_opt(&statement, &[&network.id, &slug])
        .await?
        .ok_or_else(|| {
            SitesError::not_found(format!(
                "{field}: no site {slug:?} in network {}",
                network.slug
            ))
        })?;
    Ok(SiteRow::from_row(&row)?)
}

/// Resolves a [`Scope`]; with `lock`, the network row is locked for the rest
/// of the transaction, which serializes the writes of one network.
pub async fn resolve<S: Statements>(
    client: &S,
    field: &str,
    scope: Option<&Scope>,
    lock: bool,
) -> Result<Target, SitesError> {
    let scope = scope.ok_or_else(|| SitesError::invalid(format!("{field}: missing")))?;
    if !scope.site_id.is_empty() {
        let id: Uuid = scope.site_id.parse().map_err(|_| {
            SitesError::invalid(format!(
                "{field}.site_id: {:?} is not a UUID",
                scope.site_id
            ))
        })?;
        let site = site_by_id(client, id).await?;
        let network = network_by_id(client, site.network_id, lock).await?;
        // Re-read under the lock so the site is current.
        let site = if lock {
            site_by_id(client, id).await?
        } else {
            site
        };
        return Ok(Target {
            network,
            site: Some(site),
        });
    }
    let network = network_by_slug(client, &scope.network_slug, lock)
        .await
        .map_err(|err| prefix(err, field))?;
    let site = if scope.site_slug.is_empty() {
        None
    } else {
        Some(
            site_by_slug(
                client,
                &network,
                &format!("{field}.site_slug"),
                &scope.site_slug,
            )
            .await?,
        )
    };
    Ok(Target { network, site })
}

/// Where a caller stands at a scope: what [`resolve`], the session check and
/// [`role_in`] tell, from one statement (every request of every other
/// service asks this).
#[derive(Debug)]
pub struct Standing {
    pub target: Target,
    pub role: Role,
    /// The caller holds a role somewhere in the target's network.
    pub network_member: bool,
}

/// The caller's part of [`standing`]'s statement: whether the session holds,
/// the role at the target's scopes, membership of its network.
fn standing_sql(from: &str, account: u8, session: u8) -> String {
    format!(
        "SELECT {NETWORK_COLUMNS}, {site_columns}, \
           EXISTS (SELECT 1 FROM sessions WHERE id = ${session} AND account_id = ${account} \
             AND revoked_at IS NULL AND expires_at > now()) AS live, \
           COALESCE((SELECT max(role) FROM memberships WHERE account_id = ${account} \
             AND scope_id = ANY(n.id || COALESCE(s.path, '{{}}'))), 0)::smallint AS role, \
           EXISTS (SELECT 1 FROM memberships WHERE network_id = n.id \
             AND account_id = ${account}) AS member \
         FROM (SELECT 1) AS one {from}",
        site_columns = *SITE_COLUMNS_AS_SITE,
    )
}

/// By slugs ($1 network, $2 site or ''), the caller $3 with session $4.
static STANDING_BY_SLUGS: LazyLock<String> = LazyLock::new(|| {
    standing_sql(
        &format!(
            "LEFT JOIN networks n ON n.slug = $1 \
             LEFT JOIN LATERAL (SELECT * FROM sites WHERE $2::text <> '' AND network_id = n.id \
               AND id = {}) AS s ON true",
            site_id_by_slug("n.id", "$2::text")
        ),
        3,
        4,
    )
});

/// By a site's id ($1), the caller $2 with session $3.
static STANDING_BY_SITE_ID: LazyLock<String> = LazyLock::new(|| {
    standing_sql(
        "LEFT JOIN sites s ON s.id = $1 LEFT JOIN networks n ON n.id = s.network_id",
        2,
        3,
    )
});

/// Where the holder of `session` (a verified token) — or nobody — stands at
/// `scope`, in one statement. An ended session is `UNAUTHENTICATED` before
/// anything else; the errors of a scope are [`resolve`]'s.
pub async fn standing<S: Statements>(
    client: &S,
    field: &str,
    scope: Option<&Scope>,
    session: Option<&anp_session::Session>,
) -> Result<Standing, SitesError> {
    let scope = scope.ok_or_else(|| SitesError::invalid(format!("{field}: missing")))?;
    let (account, session_id) = (session.map(|s| s.account_id), session.map(|s| s.session_id));
    let row = if !scope.site_id.is_empty() {
        let id: Uuid = scope.site_id.parse().map_err(|_| {
            SitesError::invalid(format!(
                "{field}.site_id: {:?} is not a UUID",
                scope.site_id
            ))
        })?;
        let statement = client.statement(&STANDING_BY_SITE_ID).await?;
        client
            .client()
            .query_one(&statement, &[&id, &account, &session_id])
            .await?
    } else {
        anp_kit::check_slug("network_slug", &scope.network_slug)
            .map_err(|err| prefix(SitesError::Invalid(err), field))?;
        if !scope.site_slug.is_empty() {
            anp_kit::check_slug(&format!("{field}.site_slug"), &scope.site_slug)
                .map_err(SitesError::Invalid)?;
        }
        let statement = client.statement(&STANDING_BY_SLUGS).await?;
        client
            .client()
            .query_one(
                &statement,
                &[&scope.network_slug, &scope.site_slug, &account, &session_id],
            )
            .await?
    };
    if session.is_some() && !row.try_get::<_, bool>("live")? {
        return Err(SitesError::Unauthenticated(
            "authorization: the session has ended; sign in again".into(),
        ));
    }
    if row.try_get::<_, Option<Uuid>>("id")?.is_none() {
        return Err(if !scope.site_id.is_empty() {
            SitesError::not_found(format!("site_id: no site {}", scope.site_id))
        } else {
            SitesError::not_found(format!(
                "{field}.network_slug: no network {:?}",
                scope.network_slug
            ))
        });
    }
    let network = NetworkRow::from_row(&row)?;
    let site = if row.try_get::<_, Option<Uuid>>("site_id")?.is_some() {
        Some(SiteRow::from_prefixed_row(&row)?)
    } else if !scope.site_slug.is_empty() {
        return Err(SitesError::not_found(format!(
            "{field}.site_slug: no site {:?} in network {}",
            scope.site_slug, network.slug
        )));
    } else {
        None
    };
    Ok(Standing {
        target: Target { network, site },
        role: role_from_i16(row.try_get("role")?),
        network_member: row.try_get("member")?,
    })
}

fn prefix(err: SitesError, field: &str) -> SitesError {
    match err {
        SitesError::Invalid(message) => SitesError::Invalid(format!("{field}.{message}")),
        SitesError::NotFound(message) => SitesError::NotFound(format!("{field}.{message}")),
        other => other,
    }
}

/// The strongest role `account_id` holds in the target, inherited from the
/// network and every ancestor site.
pub async fn role_in<S: Statements>(
    client: &S,
    account_id: Uuid,
    target: &Target,
) -> Result<Role, SitesError> {
    let statement = client
        .statement(
            "SELECT COALESCE(max(role), 0)::smallint FROM memberships \
             WHERE account_id = $1 AND scope_id = ANY($2)",
        )
        .await?;
    let row = client
        .client()
        .query_one(&statement, &[&account_id, &target.role_scopes()])
        .await?;
    Ok(role_from_i16(row.get(0)))
}

/// The role recorded exactly at this scope (not inherited), if any.
pub async fn membership_at<C: GenericClient>(
    client: &C,
    account_id: Uuid,
    scope_id: Uuid,
) -> Result<Option<Role>, SitesError> {
    let row = client
        .query_opt(
            "SELECT role FROM memberships WHERE scope_id = $1 AND account_id = $2",
            &[&scope_id, &account_id],
        )
        .await?;
    Ok(row.map(|row| role_from_i16(row.get(0))))
}
