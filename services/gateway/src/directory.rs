//! The directory of sites across the umbrella: a filterable page, GeoJSON
//! for maps, and the dot map the umbrella page shows.

use anp_proto::sites::v1::{DirectoryRequest, DirectoryResponse, JoinPolicy, Site};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::views::render;
use crate::{AppState, PageError};

/// Sites per directory page.
const PAGE: u32 = 50;
/// Most points in a map or a GeoJSON document.
pub const MAP_POINTS: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct DirectoryQuery {
    network: Option<String>,
    tag: Option<String>,
    lang: Option<String>,
    country: Option<String>,
    city: Option<String>,
    cursor: Option<String>,
}

impl DirectoryQuery {
    fn request(&self, limit: u32, with_coordinates: bool) -> DirectoryRequest {
        let field = |value: &Option<String>| value.as_deref().unwrap_or("").trim().to_owned();
        DirectoryRequest {
            network_slug: field(&self.network),
            tag: field(&self.tag).to_lowercase(),
            language: field(&self.lang),
            country: field(&self.country),
            city: field(&self.city),
            with_coordinates,
            limit,
            cursor: field(&self.cursor),
        }
    }

    /// The query string of these filters (no cursor), for links.
    fn filters(&self) -> String {
        let pairs = [
            ("network", &self.network),
            ("tag", &self.tag),
            ("lang", &self.lang),
            ("country", &self.country),
            ("city", &self.city),
        ];
        pairs
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_deref()?.trim();
                (!value.is_empty()).then(|| format!("{key}={}", encode(value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn fetch(
    state: &AppState,
    request: DirectoryRequest,
) -> Result<DirectoryResponse, PageError> {
    Ok(state
        .sites
        .clone()
        .directory(request)
        .await
        .map_err(PageError::from_status)?
        .into_inner())
}

#[derive(Serialize)]
struct SiteView {
    name: String,
    href: String,
    network_slug: String,
    description: String,
    tags: Vec<String>,
    languages: String,
    place: String,
    invite_only: bool,
}

fn site_href(site: &Site) -> String {
    format!("/n/{}/{}", site.network_slug, site.slug)
}

fn site_view(site: &Site) -> SiteView {
    let settings = site.settings.clone().unwrap_or_default();
    let place = settings.place.clone().unwrap_or_default();
    SiteView {
        name: site.name.clone(),
        href: site_href(site),
        network_slug: site.network_slug.clone(),
        description: settings.description.chars().take(200).collect(),
        tags: settings.tags.clone(),
        languages: settings.languages.join(", "),
        place: [place.city, place.country]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        invite_only: settings.join_policy == JoinPolicy::InviteOnly as i32,
    }
}

/// A site on the dot map: an equirectangular projection onto a 360 × 180 box.
#[derive(Serialize)]
pub struct MapPoint {
    x: f64,
    y: f64,
    name: String,
    href: String,
}

pub fn map_points(sites: &[Site]) -> Vec<MapPoint> {
    sites
        .iter()
        .filter_map(|site| {
            let place = site.settings.as_ref()?.place.as_ref()?;
            place.has_coordinates.then(|| MapPoint {
                x: ((place.longitude + 180.0) * 100.0).round() / 100.0,
                y: ((90.0 - place.latitude) * 100.0).round() / 100.0,
                name: site.name.clone(),
                href: site_href(site),
            })
        })
        .collect()
}

/// How long the umbrella page reuses its directory summary: the map and tag
/// counts of every site need not be recomputed for each view of the front page.
const SUMMARY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// What the umbrella page shows of the directory (cached for a minute).
pub async fn summary(state: &AppState) -> Result<minijinja::Value, PageError> {
    if let Some((at, value)) = state
        .directory_summary
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        && at.elapsed() < SUMMARY_TTL
    {
        return Ok(value.clone());
    }
    let located = fetch(state, DirectoryQuery::default().request(MAP_POINTS, true)).await?;
    let all = fetch(state, DirectoryQuery::default().request(1, false)).await?;
    let value = context! {
        points => map_points(&located.sites),
        tags => all.tags.iter().take(12).map(|tag| context! { tag => tag.tag.clone(), sites => tag.sites }).collect::<Vec<_>>(),
        total => all.total,
    };
    *state
        .directory_summary
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), value.clone()));
    Ok(value)
}

pub async fn page(
    State(state): State<AppState>,
    Query(query): Query<DirectoryQuery>,
) -> Result<Response, PageError> {
    let response = fetch(&state, query.request(PAGE, false)).await?;
    let located = fetch(&state, query.request(MAP_POINTS, true)).await?;
    let networks = crate::views::fetch_networks(&state).await?;
    let filters = query.filters();
    let next_href = (!response.next_cursor.is_empty()).then(|| {
        let separator = if filters.is_empty() { "" } else { "&" };
        format!(
            "/directory?{filters}{separator}cursor={}",
            response.next_cursor
        )
    });
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    render(
        &state,
        "directory.html",
        context! {
            title => "Directory",
            umbrella_name => state.umbrella_name.clone(),
            crumbs => vec![context! { label => "Directory", href => "/directory" }],
            sites => response.sites.iter().map(site_view).collect::<Vec<_>>(),
            total => response.total,
            tags => response.tags.iter().map(|tag| context! { tag => tag.tag.clone(), sites => tag.sites }).collect::<Vec<_>>(),
            networks => networks.iter().map(|n| context! { slug => n.slug.clone(), name => n.name.clone() }).collect::<Vec<_>>(),
            points => map_points(&located.sites),
            geojson_href => if filters.is_empty() { "/directory.geojson".to_owned() } else { format!("/directory.geojson?{filters}") },
            next_href => next_href,
            selected => context! {
                network => value(&query.network),
                tag => value(&query.tag),
                lang => value(&query.lang),
                country => value(&query.country),
                city => value(&query.city),
            },
        },
    )
}

/// GeoJSON (RFC 7946): one Point feature per located site.
pub async fn geojson(
    State(state): State<AppState>,
    Query(query): Query<DirectoryQuery>,
) -> Result<Response, PageError> {
    let response = fetch(&state, query.request(MAP_POINTS, true)).await?;
    let features = response
        .sites
        .iter()
        .filter_map(|site| {
            let settings = site.settings.clone()?;
            let place = settings.place.clone()?;
            let mut properties = serde_json::Map::new();
            properties.insert("name".into(), site.name.clone().into());
            properties.insert("network".into(), site.network_slug.clone().into());
            properties.insert(
                "url".into(),
                format!("{}{}", state.public_url, site_href(site)).into(),
            );
            properties.insert("tags".into(), settings.tags.clone().into());
            properties.insert("languages".into(), settings.languages.clone().into());
            properties.insert("city".into(), place.city.clone().into());
            properties.insert("country".into(), place.country.clone().into());
            Some(geojson::Feature {
                bbox: None,
                geometry: Some(geojson::Geometry::new_point([
                    place.longitude,
                    place.latitude,
                ])),
                id: Some(geojson::feature::Id::String(site.id.clone())),
                properties: Some(properties),
                foreign_members: None,
            })
        })
        .collect();
    let collection = geojson::FeatureCollection {
        bbox: None,
        features,
        foreign_members: None,
    };
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        collection.to_string(),
    )
        .into_response())
}
