//! Rows of the state tables, their protobuf forms, roles, and the checks of
//! site settings.

use anp_proto::events::v1 as ev;
use anp_proto::sites::v1::{JoinPolicy, Network, NetworkStatus, Place, Role, Site, SiteSettings};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::SitesError;

pub const NAME_MAX: usize = 120;
pub const DESCRIPTION_MAX: usize = 2000;
pub const TAGS_MAX: usize = 20;
pub const FEEDS_MAX: usize = 20;
pub const URL_MAX: usize = 500;
pub const CITY_MAX: usize = 120;
pub const DOMAIN_MAX: usize = 253;
/// Deepest nesting of sites: a top-level site is at depth 1.
pub const MAX_DEPTH: usize = 4;

/// A role as stored (`memberships.role`) and carried in events.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unspecified => "",
        Role::Member => "member",
        Role::Editor => "editor",
        Role::SiteAdmin => "site_admin",
        Role::NetworkAdmin => "network_admin",
    }
}

pub fn role_from_name(name: &str) -> Role {
    match name {
        "member" => Role::Member,
        "editor" => Role::Editor,
        "site_admin" => Role::SiteAdmin,
        "network_admin" => Role::NetworkAdmin,
        _ => Role::Unspecified,
    }
}

pub fn role_from_i16(value: i16) -> Role {
    Role::try_from(i32::from(value)).unwrap_or(Role::Unspecified)
}

/// A role named in a request: known and not `UNSPECIFIED`.
pub fn requested_role(field: &str, value: i32) -> Result<Role, SitesError> {
    match Role::try_from(value) {
        Ok(Role::Unspecified) | Err(_) => Err(SitesError::invalid(format!(
            "{field}: choose member, editor, site_admin or network_admin"
        ))),
        Ok(role) => Ok(role),
    }
}

#[derive(Debug, Clone)]
pub struct NetworkRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub notice: String,
    pub suspended_at: Option<DateTime<Utc>>,
    pub plan: String,
    pub quota_sites: i64,
    pub quota_members: i64,
    pub quota_storage_bytes: i64,
}

pub const NETWORK_COLUMNS: &str = "n.id, n.slug, n.name, n.created_at, n.status, n.notice, \
     n.suspended_at, n.plan, n.quota_sites, n.quota_members, n.quota_storage_bytes";

impl NetworkRow {
    pub fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(NetworkRow {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            status: row.try_get("status")?,
            notice: row.try_get("notice")?,
            suspended_at: row.try_get("suspended_at")?,
            plan: row.try_get("plan")?,
            quota_sites: row.try_get("quota_sites")?,
            quota_members: row.try_get("quota_members")?,
            quota_storage_bytes: row.try_get("quota_storage_bytes")?,
        })
    }

    pub fn suspended(&self) -> bool {
        self.status == "suspended"
    }

    /// Fails with `FAILED_PRECONDITION` while the network is suspended.
    pub fn check_active(&self) -> Result<(), SitesError> {
        if self.suspended() {
            return Err(SitesError::Precondition(format!(
                "network {:?} is suspended: writes are refused until the cooperative resumes it",
                self.slug
            )));
        }
        Ok(())
    }

    pub fn to_proto(&self) -> Network {
        Network {
            id: self.id.to_string(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            created_at: Some(anp_kit::timestamp(self.created_at)),
            status: if self.suspended() {
                NetworkStatus::Suspended
            } else {
                NetworkStatus::Active
            } as i32,
            notice: if self.suspended() {
                self.notice.clone()
            } else {
                String::new()
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct SiteRow {
    pub id: Uuid,
    pub network_id: Uuid,
    pub network_slug: String,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub parent_id: Option<Uuid>,
    /// Ancestors, root first, ending with the site itself.
    pub path: Vec<Uuid>,
    pub archived_at: Option<DateTime<Utc>>,
    pub settings: ev::SiteSettings,
}

pub const SITE_COLUMNS: &str = "s.id, s.network_id, n.slug AS network_slug, s.slug, s.name, \
     s.created_at, s.updated_at, s.parent_id, s.path, s.archived_at, s.description, s.languages, \
     s.city, s.country, s.latitude, s.longitude, s.tags, s.feed_urls, s.custom_domain, s.invite_only";

/// [`SITE_COLUMNS`] named `site_…`, to select beside [`NETWORK_COLUMNS`].
pub static SITE_COLUMNS_AS_SITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    SITE_COLUMNS
        .split(',')
        .map(|column| {
            let column = column.trim();
            let name = column.rsplit_once(" AS ").map_or_else(
                || column.rsplit('.').next().unwrap_or(column),
                |(_, name)| name,
            );
            let expression = column.rsplit_once(" AS ").map_or(column, |(e, _)| e);
            format!("{expression} AS site_{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// A row's columns by name, each after a prefix.
struct Columns<'a> {
    row: &'a Row,
    prefix: &'static str,
}

impl<'a> Columns<'a> {
    fn get<T: tokio_postgres::types::FromSql<'a>>(
        &self,
        name: &str,
    ) -> Result<T, tokio_postgres::Error> {
        if self.prefix.is_empty() {
            return self.row.try_get(name);
        }
        let index = self
            .row
            .columns()
            .iter()
            .position(|column| column.name().strip_prefix(self.prefix) == Some(name));
        match index {
            Some(index) => self.row.try_get(index),
            None => self.row.try_get(format!("{}{name}", self.prefix).as_str()),
        }
    }
}

impl SiteRow {
    pub fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Self::from_columns(&Columns { row, prefix: "" })
    }

    /// From a row whose site columns are named `site_…` ([`SITE_COLUMNS_AS_SITE`]),
    /// beside a network's.
    pub fn from_prefixed_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Self::from_columns(&Columns {
            row,
            prefix: "site_",
        })
    }

    fn from_columns(row: &Columns<'_>) -> Result<Self, tokio_postgres::Error> {
        let latitude: Option<f64> = row.get("latitude")?;
        let longitude: Option<f64> = row.get("longitude")?;
        let name: String = row.get("name")?;
        Ok(SiteRow {
            id: row.get("id")?,
            network_id: row.get("network_id")?,
            network_slug: row.get("network_slug")?,
            slug: row.get("slug")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            parent_id: row.get("parent_id")?,
            path: row.get("path")?,
            archived_at: row.get("archived_at")?,
            settings: ev::SiteSettings {
                name: name.clone(),
                description: row.get("description")?,
                languages: row.get("languages")?,
                place: Some(ev::Place {
                    city: row.get("city")?,
                    country: row.get("country")?,
                    has_coordinates: latitude.is_some() && longitude.is_some(),
                    latitude: latitude.unwrap_or_default(),
                    longitude: longitude.unwrap_or_default(),
                }),
                tags: row.get("tags")?,
                feed_urls: row.get("feed_urls")?,
                custom_domain: row
                    .get::<Option<String>>("custom_domain")?
                    .unwrap_or_default(),
                invite_only: row.get("invite_only")?,
            },
            name,
        })
    }

    pub fn depth(&self) -> usize {
        self.path.len().max(1)
    }

    pub fn to_proto(&self) -> Site {
        Site {
            id: self.id.to_string(),
            network_id: self.network_id.to_string(),
            network_slug: self.network_slug.clone(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            created_at: Some(anp_kit::timestamp(self.created_at)),
            parent_site_id: self.parent_id.map(|id| id.to_string()).unwrap_or_default(),
            depth: self.depth() as u32,
            archived: self.archived_at.is_some(),
            settings: Some(settings_to_proto(&self.settings)),
            updated_at: Some(anp_kit::timestamp(self.updated_at)),
        }
    }
}

pub fn settings_to_proto(settings: &ev::SiteSettings) -> SiteSettings {
    let place = settings.place.clone().unwrap_or_default();
    SiteSettings {
        name: settings.name.clone(),
        description: settings.description.clone(),
        languages: settings.languages.clone(),
        place: Some(Place {
            city: place.city,
            country: place.country,
            has_coordinates: place.has_coordinates,
            latitude: place.latitude,
            longitude: place.longitude,
        }),
        tags: settings.tags.clone(),
        feed_urls: settings.feed_urls.clone(),
        custom_domain: settings.custom_domain.clone(),
        join_policy: if settings.invite_only {
            JoinPolicy::InviteOnly
        } else {
            JoinPolicy::Open
        } as i32,
    }
}

/// Checks and normalizes settings from a request: trimmed, lowercased where
/// case means nothing, de-duplicated. Every error names its field.
pub fn check_settings(settings: &SiteSettings) -> Result<ev::SiteSettings, SitesError> {
    let invalid = SitesError::Invalid;
    anp_kit::check_text("settings.name", &settings.name, NAME_MAX).map_err(invalid)?;
    let description = settings.description.trim().to_owned();
    if !description.is_empty() {
        anp_kit::check_text("settings.description", &description, DESCRIPTION_MAX)
            .map_err(invalid)?;
    }
    let mut languages = Vec::new();
    for language in &settings.languages {
        let language = language.trim().to_ascii_lowercase();
        anp_kit::check_language("settings.languages", &language).map_err(SitesError::invalid)?;
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    if languages.is_empty() {
        languages.push("en".to_owned());
    }
    let place = check_place(settings.place.as_ref())?;
    if settings.tags.len() > TAGS_MAX {
        return Err(SitesError::invalid(format!(
            "settings.tags: at most {TAGS_MAX} tags"
        )));
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in &settings.tags {
        let tag = tag.trim().to_lowercase();
        anp_kit::check_slug("settings.tags", &tag).map_err(invalid)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if settings.feed_urls.len() > FEEDS_MAX {
        return Err(SitesError::invalid(format!(
            "settings.feed_urls: at most {FEEDS_MAX} feeds"
        )));
    }
    let mut feed_urls: Vec<String> = Vec::new();
    for url in &settings.feed_urls {
        let url = check_feed_url(url)?;
        if !feed_urls.contains(&url) {
            feed_urls.push(url);
        }
    }
    let custom_domain = check_domain(&settings.custom_domain)?;
    let invite_only = match JoinPolicy::try_from(settings.join_policy) {
        Ok(JoinPolicy::InviteOnly) => true,
        Ok(_) => false,
        Err(_) => {
            return Err(SitesError::invalid(
                "settings.join_policy: choose open or invite_only",
            ));
        }
    };
    Ok(ev::SiteSettings {
        name: settings.name.trim().to_owned(),
        description,
        languages,
        place: Some(place),
        tags,
        feed_urls,
        custom_domain,
        invite_only,
    })
}

fn check_place(place: Option<&Place>) -> Result<ev::Place, SitesError> {
    let Some(place) = place else {
        return Ok(ev::Place::default());
    };
    let city = place.city.trim().to_owned();
    if !city.is_empty() {
        anp_kit::check_text("settings.place.city", &city, CITY_MAX).map_err(SitesError::Invalid)?;
    }
    let country = place.country.trim().to_ascii_uppercase();
    if !country.is_empty()
        && (country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()))
    {
        return Err(SitesError::invalid(format!(
            "settings.place.country: {country:?} is not an ISO 3166-1 alpha-2 code such as \"US\""
        )));
    }
    if place.has_coordinates {
        if !(place.latitude.is_finite() && (-90.0..=90.0).contains(&place.latitude)) {
            return Err(SitesError::invalid(
                "settings.place.latitude: must lie between -90 and 90",
            ));
        }
        if !(place.longitude.is_finite() && (-180.0..=180.0).contains(&place.longitude)) {
            return Err(SitesError::invalid(
                "settings.place.longitude: must lie between -180 and 180",
            ));
        }
    }
    Ok(ev::Place {
        city,
        country,
        has_coordinates: place.has_coordinates,
        latitude: if place.has_coordinates {
            place.latitude
        } else {
            0.0
        },
        longitude: if place.has_coordinates {
            place.longitude
        } else {
            0.0
        },
    })
}

fn check_feed_url(url: &str) -> Result<String, SitesError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let valid = url.len() <= URL_MAX
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && host.is_some_and(|host| !host.is_empty() && !host.contains('@'));
    if !valid {
        return Err(SitesError::invalid(format!(
            "settings.feed_urls: {url:?} is not an http(s) URL of at most {URL_MAX} characters"
        )));
    }
    Ok(url.to_owned())
}

/// A custom domain: lowercase DNS name with at least two labels, or empty.
pub fn check_domain(domain: &str) -> Result<String, SitesError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Ok(domain);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let valid = domain.len() <= DOMAIN_MAX
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()));
    if !valid {
        return Err(SitesError::invalid(format!(
            "settings.custom_domain: {domain:?} is not a domain name such as \"boston.example.org\""
        )));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SiteSettings {
        SiteSettings {
            name: " Boston ".into(),
            languages: vec!["ES".into(), "en".into(), "es".into()],
            tags: vec!["Climate".into(), "climate".into(), "labor".into()],
            feed_urls: vec!["https://social.example/@boston".into()],
            custom_domain: "Boston.Example.org.".into(),
            place: Some(Place {
                city: "Boston".into(),
                country: "us".into(),
                has_coordinates: true,
                latitude: 42.36,
                longitude: -71.06,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn settings_are_normalized() {
        let checked = check_settings(&settings()).unwrap();
        assert_eq!(checked.name, "Boston");
        assert_eq!(checked.languages, ["es", "en"]);
        assert_eq!(checked.tags, ["climate", "labor"]);
        assert_eq!(checked.custom_domain, "boston.example.org");
        assert_eq!(checked.place.unwrap().country, "US");
    }

    #[test]
    fn bad_settings_name_their_field() {
        type Change = Box<dyn Fn(&mut SiteSettings)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.name = String::new()), "settings.name"),
            (
                Box::new(|s| s.languages = vec!["xx".into()]),
                "settings.languages",
            ),
            (
                Box::new(|s| s.tags = vec!["no spaces".into()]),
                "settings.tags",
            ),
            (
                Box::new(|s| s.tags = vec!["t".repeat(3); 21]),
                "settings.tags",
            ),
            (
                Box::new(|s| s.feed_urls = vec!["javascript:alert(1)".into()]),
                "settings.feed_urls",
            ),
            (
                Box::new(|s| s.custom_domain = "not a domain".into()),
                "settings.custom_domain",
            ),
            (
                Box::new(|s| s.custom_domain = "localhost".into()),
                "settings.custom_domain",
            ),
            (
                Box::new(|s| s.custom_domain = "10.0.0.1".into()),
                "settings.custom_domain",
            ),
            (
                Box::new(|s| s.place.as_mut().unwrap().latitude = 91.0),
                "settings.place.latitude",
            ),
            (
                Box::new(|s| s.place.as_mut().unwrap().longitude = f64::NAN),
                "settings.place.longitude",
            ),
            (
                Box::new(|s| s.place.as_mut().unwrap().country = "USA".into()),
                "settings.place.country",
            ),
            (Box::new(|s| s.join_policy = 9), "settings.join_policy"),
        ];
        for (change, field) in cases {
            let mut bad = settings();
            change(&mut bad);
            let err = check_settings(&bad).unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }
}
