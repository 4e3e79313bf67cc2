//! Page and feed handlers.

use anp_proto::aggregator::v1::{FeedEntry, FeedScope, GetFeedRequest, SearchRequest};
use anp_proto::content::v1::{
    GetPageRequest, GetPostRequest, GetThreadRequest, ListFeedItemsRequest, ListPagesRequest,
    ListThreadsRequest,
};
use anp_proto::sites::v1::{
    GetNetworkRequest, GetSiteRequest, ListNetworksRequest, ListSitesRequest, Network, Site,
};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::{AppState, PageError, atom, i18n};

const FEED_PAGE: u32 = 20;
const ATOM_ENTRIES: u32 = 50;
const QUERY_MAX_CHARS: usize = 512;
const SEARCH_PAGE: u32 = 20;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    network: Option<String>,
    /// post, page, thread, site, event
    kind: Option<String>,
    /// YYYY-MM-DD: documents dated (events starting) from this day on (UTC).
    from: Option<String>,
    /// YYYY-MM-DD: …and before the end of this day (UTC).
    to: Option<String>,
    /// relevance (default) or date
    sort: Option<String>,
    /// One site of `network`.
    site: Option<String>,
    tag: Option<String>,
    lang: Option<String>,
    /// The next page of the same search.
    cursor: Option<String>,
}

impl SearchQuery {
    /// The parameters as a query string, with `changes` applied (an empty
    /// value drops the parameter) and without the cursor.
    fn href(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("q", &self.q),
            ("network", &self.network),
            ("site", &self.site),
            ("kind", &self.kind),
            ("tag", &self.tag),
            ("lang", &self.lang),
            ("from", &self.from),
            ("to", &self.to),
            ("sort", &self.sort),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.clone().filter(|v| !v.is_empty())?)))
        .collect();
        for (name, value) in changes {
            pairs.retain(|(existing, _)| existing != name);
            if !value.is_empty() {
                pairs.push((name, (*value).to_owned()));
            }
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            query.append_pair(name, &value);
        }
        format!("/search?{}", query.finish())
    }
}

/// A `YYYY-MM-DD` query parameter as the start of that day (UTC), plus `days`.
fn day_param(
    field: &str,
    value: Option<&str>,
    days: i64,
) -> Result<Option<prost_types::Timestamp>, PageError> {
    match value.filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|day| {
                Some(anp_kit::timestamp(
                    (day + chrono::Duration::days(days))
                        .and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc(),
                ))
            })
            .map_err(|_| {
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{field}: {value:?} is not a date YYYY-MM-DD"),
                )
            }),
    }
}

#[derive(Serialize)]
struct Crumb {
    label: String,
    href: String,
}

#[derive(Serialize)]
struct EntryView {
    title: String,
    href: String,
    network_href: String,
    network_slug: String,
    site_href: String,
    site_name: String,
    lang: String,
    published_iso: String,
    published_human: String,
    summary_html: String,
}

#[derive(Serialize)]
struct SiteLink {
    name: String,
    href: String,
}

/// An item of a linked feed; its title is already escaped text.
#[derive(Serialize)]
struct SocialItem {
    title_html: String,
    href: String,
    published_human: String,
}

fn post_path(network: &str, site: &str, post_id: &str) -> String {
    format!("/n/{network}/{site}/posts/{post_id}")
}

fn entry_view(entry: &FeedEntry) -> EntryView {
    let published = anp_kit::from_timestamp(entry.published_at.as_ref());
    EntryView {
        title: entry.title.clone(),
        href: post_path(&entry.network_slug, &entry.site_slug, &entry.id),
        network_href: format!("/n/{}", entry.network_slug),
        network_slug: entry.network_slug.clone(),
        site_href: format!("/n/{}/{}", entry.network_slug, entry.site_slug),
        site_name: entry.site_name.clone(),
        lang: entry.lang.clone(),
        published_iso: published.to_rfc3339(),
        published_human: published.format("%Y-%m-%d %H:%M UTC").to_string(),
        summary_html: entry.summary_html.clone(),
    }
}

pub(crate) fn render(
    state: &AppState,
    template: &str,
    context: minijinja::Value,
) -> Result<Response, PageError> {
    let html = state
        .templates
        .get_template(template)
        .and_then(|template| template.render(context! { ..context, ..i18n::context() }))
        .map_err(|err| {
            tracing::error!(error = %err, template, "template failed");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                i18n::here("error-not-shown"),
            )
        })?;
    Ok(Html(html).into_response())
}

pub(crate) fn require_slug(value: &str) -> Result<(), PageError> {
    anp_kit::check_slug("path", value)
        .map_err(|_| PageError::new(StatusCode::NOT_FOUND, i18n::here("error-no-page")))
}

/// Every network, for lists and filters.
pub(crate) async fn fetch_networks(state: &AppState) -> Result<Vec<Network>, PageError> {
    Ok(state
        .sites
        .clone()
        .list_networks(ListNetworksRequest {})
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .networks)
}

async fn fetch_network(state: &AppState, network_slug: &str) -> Result<Network, PageError> {
    require_slug(network_slug)?;
    Ok(state
        .sites
        .clone()
        .get_network(GetNetworkRequest {
            slug: network_slug.to_owned(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner())
}

async fn fetch_site(
    state: &AppState,
    network_slug: &str,
    site_slug: &str,
) -> Result<Site, PageError> {
    require_slug(network_slug)?;
    require_slug(site_slug)?;
    Ok(state
        .sites
        .clone()
        .get_site(GetSiteRequest {
            site_id: String::new(),
            network_slug: network_slug.to_owned(),
            site_slug: site_slug.to_owned(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner())
}

async fn feed_page(
    state: &AppState,
    scope: FeedScope,
    cursor: Option<String>,
    limit: u32,
) -> Result<(Vec<FeedEntry>, String), PageError> {
    let response = state
        .aggregator
        .clone()
        .get_feed(GetFeedRequest {
            scope: Some(scope),
            cursor: cursor.unwrap_or_default(),
            limit,
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    Ok((response.entries, response.next_cursor))
}

struct FeedPage {
    /// The next events here, and where the whole calendar is.
    upcoming: Vec<crate::calendar::UpcomingView>,
    calendar_href: String,
    heading: String,
    /// Shown above the page, e.g. while the network is suspended.
    notice: String,
    /// The directory's map and tags (the umbrella page).
    directory: Option<minijinja::Value>,
    description: String,
    path: String,
    crumbs: Vec<Crumb>,
    sites_heading: String,
    sites: Vec<SiteLink>,
    /// A site's pages, in its menu.
    menu: Vec<SiteLink>,
    /// The newest items of a site's linked social feeds.
    social: Vec<SocialItem>,
    /// A site's public discussions, most recently active first.
    threads: Vec<SiteLink>,
    search_network: String,
    entries: Vec<FeedEntry>,
    next_cursor: String,
}

/// Upcoming events shown on a feed page.
const UPCOMING_SHOWN: u32 = 5;

fn render_feed(state: &AppState, page: FeedPage) -> Result<Response, PageError> {
    let entries: Vec<EntryView> = page.entries.iter().map(entry_view).collect();
    let base = if page.path == "/" {
        ""
    } else {
        page.path.as_str()
    };
    let next_href = (!page.next_cursor.is_empty())
        .then(|| format!("{}?cursor={}", page.path, page.next_cursor));
    render(
        state,
        "feed.html",
        context! {
            title => page.heading.clone(),
            heading => page.heading,
            notice => page.notice,
            directory => page.directory,
            description => page.description,
            umbrella_name => state.umbrella_name.clone(),
            crumbs => page.crumbs,
            sites_heading => page.sites_heading,
            sites => page.sites,
            menu => page.menu,
            social => page.social,
            threads => page.threads,
            upcoming => page.upcoming,
            calendar_href => page.calendar_href,
            entries => entries,
            next_href => next_href,
            atom_url => format!("{base}/feed.atom"),
            json_feed_url => format!("{base}/feed.json"),
            show_network => page.search_network.is_empty(),
            search_network => page.search_network,
        },
    )
}

pub async fn umbrella(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let (entries, next_cursor) =
        feed_page(&state, FeedScope::default(), query.cursor, FEED_PAGE).await?;
    let networks = fetch_networks(&state).await?;
    let (upcoming, _) =
        crate::calendar::upcoming(&state, FeedScope::default(), String::new(), UPCOMING_SHOWN)
            .await?;
    render_feed(
        &state,
        FeedPage {
            upcoming,
            calendar_href: "/events".into(),
            heading: state.umbrella_name.clone(),
            notice: String::new(),
            directory: Some(crate::directory::summary(&state).await?),
            description: i18n::here("umbrella-description"),
            path: "/".into(),
            crumbs: vec![],
            sites_heading: i18n::here("movements-heading"),
            menu: vec![],
            social: vec![],
            threads: vec![],
            sites: networks
                .into_iter()
                .map(|network| SiteLink {
                    href: format!("/n/{}", network.slug),
                    name: network.name,
                })
                .collect(),
            search_network: String::new(),
            entries,
            next_cursor,
        },
    )
}

pub async fn network(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let network = fetch_network(&state, &network_slug).await?;
    let sites = state
        .sites
        .clone()
        .list_sites(ListSitesRequest {
            include_archived: false,
            network_slug: network_slug.clone(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .sites;
    let scope = FeedScope {
        network_slug: network_slug.clone(),
        ..Default::default()
    };
    let (entries, next_cursor) = feed_page(&state, scope.clone(), query.cursor, FEED_PAGE).await?;
    let (upcoming, _) =
        crate::calendar::upcoming(&state, scope, String::new(), UPCOMING_SHOWN).await?;
    let path = format!("/n/{network_slug}");
    render_feed(
        &state,
        FeedPage {
            upcoming,
            calendar_href: format!("{path}/events"),
            heading: network.name.clone(),
            notice: network.notice.clone(),
            directory: None,
            description: String::new(),
            crumbs: vec![Crumb {
                label: network.name,
                href: path.clone(),
            }],
            path,
            sites_heading: i18n::here("sites-heading"),
            menu: vec![],
            social: vec![],
            threads: vec![],
            sites: sites
                .into_iter()
                .map(|site| SiteLink {
                    href: format!("/n/{network_slug}/{}", site.slug),
                    name: site.name,
                })
                .collect(),
            search_network: network_slug,
            entries,
            next_cursor,
        },
    )
}

pub async fn site(
    State(state): State<AppState>,
    Path((network_slug, site_slug)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let site = fetch_site(&state, &network_slug, &site_slug).await?;
    if site.slug != site_slug {
        // A former slug of a renamed site: send the browser to the current one.
        return Ok(
            Redirect::permanent(&format!("/n/{network_slug}/{}", site.slug)).into_response(),
        );
    }
    let network = fetch_network(&state, &network_slug).await?;
    let scope = FeedScope {
        site_id: site.id.clone(),
        ..Default::default()
    };
    let (entries, next_cursor) = feed_page(&state, scope.clone(), query.cursor, FEED_PAGE).await?;
    let (upcoming, _) =
        crate::calendar::upcoming(&state, scope, String::new(), UPCOMING_SHOWN).await?;
    let path = format!("/n/{network_slug}/{site_slug}");
    let menu = state
        .content
        .clone()
        .list_pages(ListPagesRequest {
            network_slug: network_slug.clone(),
            site_slug: site_slug.clone(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .pages
        .into_iter()
        .map(|page| SiteLink {
            href: format!("{path}/pages/{}", page.slug),
            name: page.title,
        })
        .collect();
    let threads = state
        .content
        .clone()
        .list_threads(ListThreadsRequest {
            network_slug: network_slug.clone(),
            site_slug: site_slug.clone(),
            limit: 5,
            cursor: String::new(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .threads
        .into_iter()
        .map(|thread| SiteLink {
            href: format!("/n/{network_slug}/threads/{}", thread.id),
            name: thread.title,
        })
        .collect();
    let social = state
        .content
        .clone()
        .list_feed_items(ListFeedItemsRequest {
            network_slug: network_slug.clone(),
            site_slug: site_slug.clone(),
            limit: 5,
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner()
        .items
        .into_iter()
        .map(|item| SocialItem {
            title_html: item.title,
            href: item.link,
            published_human: anp_kit::from_timestamp(item.published_at.as_ref())
                .format("%Y-%m-%d")
                .to_string(),
        })
        .collect();
    render_feed(
        &state,
        FeedPage {
            upcoming,
            calendar_href: format!("{path}/calendar"),
            heading: site.name.clone(),
            notice: network.notice,
            directory: None,
            description: site
                .settings
                .as_ref()
                .map(|settings| settings.description.clone())
                .unwrap_or_default(),
            crumbs: vec![
                Crumb {
                    label: network_slug.clone(),
                    href: format!("/n/{network_slug}"),
                },
                Crumb {
                    label: site.name,
                    href: path.clone(),
                },
            ],
            path,
            sites_heading: String::new(),
            sites: vec![],
            menu,
            social,
            threads,
            search_network: network_slug,
            entries,
            next_cursor,
        },
    )
}

pub async fn post(
    State(state): State<AppState>,
    Path((network_slug, site_slug, post_id)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    if uuid_like(&post_id).is_none() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            i18n::here("error-no-post"),
        ));
    }
    let post = state
        .content
        .clone()
        .get_post(GetPostRequest {
            post_id: post_id.clone(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    // The site by the slug in the link (a former slug finds it too), and the
    // post must belong to it; a former slug redirects to the current link.
    let site = fetch_site(&state, &network_slug, &site_slug).await?;
    if post.network_slug != network_slug || post.site_id != site.id {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            i18n::here("error-no-post"),
        ));
    }
    if site.slug != site_slug {
        return Ok(
            Redirect::permanent(&post_path(&network_slug, &site.slug, &post_id)).into_response(),
        );
    }
    if post.status == "retracted" {
        let message = if post.retraction_reason.is_empty() {
            i18n::here("error-retracted")
        } else {
            i18n::text_with(
                i18n::current(),
                "error-retracted-because",
                &[("reason", i18n::Arg::Text(&post.retraction_reason))],
            )
        };
        return Err(PageError::new(StatusCode::GONE, message));
    }
    let network = fetch_network(&state, &network_slug).await?;
    let published = anp_kit::from_timestamp(post.published_at.as_ref());
    render(
        &state,
        "post.html",
        context! {
            notice => network.notice,
            title => post.title.clone(),
            lang => post.lang.clone(),
            umbrella_name => state.umbrella_name.clone(),
            crumbs => vec![
                Crumb { label: network_slug.clone(), href: format!("/n/{network_slug}") },
                Crumb { label: site_slug.clone(), href: format!("/n/{network_slug}/{site_slug}") },
            ],
            search_network => network_slug.clone(),
            post => context! {
                title => post.title,
                lang => post.lang,
                body_html => post.body_html,
                site_slug => site_slug.clone(),
                site_href => format!("/n/{network_slug}/{site_slug}"),
                published_iso => published.to_rfc3339(),
                published_human => published.format("%Y-%m-%d %H:%M UTC").to_string(),
                tags => post.tags,
            },
        },
    )
}

/// A site's static page; `/pages/<id>` (search links) redirects to its slug.
pub async fn page(
    State(state): State<AppState>,
    Path((network_slug, site_slug, slug)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    require_slug(&site_slug)?;
    let site = fetch_site(&state, &network_slug, &site_slug).await?;
    let page = state
        .content
        .clone()
        .get_page(GetPageRequest {
            network_slug: network_slug.clone(),
            site_slug: site.slug.clone(),
            slug: slug.clone(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    if site.slug != site_slug || page.slug != slug {
        return Ok(Redirect::permanent(&format!(
            "/n/{network_slug}/{}/pages/{}",
            site.slug, page.slug
        ))
        .into_response());
    }
    let network = fetch_network(&state, &network_slug).await?;
    render(
        &state,
        "page.html",
        context! {
            notice => network.notice,
            title => page.title.clone(),
            lang => page.lang.clone(),
            umbrella_name => state.umbrella_name.clone(),
            crumbs => vec![
                Crumb { label: network_slug.clone(), href: format!("/n/{network_slug}") },
                Crumb { label: site.name.clone(), href: format!("/n/{network_slug}/{site_slug}") },
            ],
            search_network => network_slug.clone(),
            page => context! {
                title => page.title,
                lang => page.lang,
                body_html => page.body_html,
            },
        },
    )
}

/// A public discussion thread with its first replies.
pub async fn thread(
    State(state): State<AppState>,
    Path((network_slug, thread_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    require_slug(&network_slug)?;
    if uuid_like(&thread_id).is_none() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            i18n::here("error-no-thread"),
        ));
    }
    let found = state
        .content
        .clone()
        .get_thread(GetThreadRequest {
            thread_id,
            limit: 200,
            cursor: String::new(),
        })
        .await
        .map_err(PageError::from_status)?
        .into_inner();
    let thread = found.thread.unwrap_or_default();
    if thread.network_slug != network_slug {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            i18n::here("error-no-thread"),
        ));
    }
    let network = fetch_network(&state, &network_slug).await?;
    let replies: Vec<minijinja::Value> = found
        .replies
        .iter()
        .map(|reply| {
            let at = anp_kit::from_timestamp(reply.created_at.as_ref());
            context! {
                hidden => reply.hidden,
                body_html => reply.body_html.clone(),
                at_iso => at.to_rfc3339(),
                at_human => at.format("%Y-%m-%d %H:%M UTC").to_string(),
            }
        })
        .collect();
    let place = if thread.site_slug.is_empty() {
        Crumb {
            label: i18n::here("board"),
            href: format!("/n/{network_slug}"),
        }
    } else {
        Crumb {
            label: thread.site_slug.clone(),
            href: format!("/n/{network_slug}/{}", thread.site_slug),
        }
    };
    render(
        &state,
        "thread.html",
        context! {
            notice => network.notice,
            title => thread.title.clone(),
            umbrella_name => state.umbrella_name.clone(),
            crumbs => vec![
                Crumb { label: network_slug.clone(), href: format!("/n/{network_slug}") },
                place,
            ],
            search_network => network_slug.clone(),
            thread => context! {
                title => thread.title,
                body_html => thread.body_html,
                locked => thread.locked,
                replies => replies,
            },
        },
    )
}

fn uuid_like(text: &str) -> Option<()> {
    (text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then_some(())
}

#[derive(Serialize)]
struct HitView {
    kind: String,
    id: String,
    title: String,
    href: String,
    network_slug: String,
    site_slug: String,
    site_name: String,
    lang: String,
    snippet_html: String,
    published_at: String,
    tags: Vec<String>,
    /// public, network or site.
    visibility: String,
}

/// Checks the `q` parameter; the error names it.
pub fn check_query(q: &str) -> Result<(), PageError> {
    let count = q.chars().count();
    if count > QUERY_MAX_CHARS {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            format!("q: {count} characters, at most {QUERY_MAX_CHARS} allowed"),
        ));
    }
    if q.chars().any(char::is_control) {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "q: must not contain control characters",
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct FacetValueView {
    value: String,
    count: u64,
    /// This search narrowed to the value, or widened again when selected.
    href: String,
    selected: bool,
}

#[derive(Serialize)]
struct FacetView {
    field: String,
    values: Vec<FacetValueView>,
}

/// One page of a search, for the page and the JSON API.
#[derive(Serialize, Default)]
struct SearchView {
    total: u64,
    /// More than `total` (counting stopped there).
    total_is_lower_bound: bool,
    hits: Vec<HitView>,
    facets: Vec<FacetView>,
    /// The facets' counts are estimates (very many hits, counted from a
    /// sample).
    facets_are_estimates: bool,
    /// Empty: the last page.
    next_cursor: String,
}

fn bad(message: String) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, message)
}

/// Runs a search for the page or the JSON API, as whoever the session
/// cookie names (members find their networks' and sites' members-only
/// documents); the errors name the parameter.
async fn run_search(
    state: &AppState,
    token: Option<String>,
    params: &SearchQuery,
    (limit, facets): (u32, bool),
) -> Result<SearchView, PageError> {
    let q = params.q.clone().unwrap_or_default();
    check_query(&q)?;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let network = text(&params.network);
    if !network.is_empty() {
        anp_kit::check_slug("network", &network).map_err(bad)?;
    }
    let site = text(&params.site);
    if !site.is_empty() {
        if network.is_empty() {
            return Err(bad("network: required when site is given".into()));
        }
        anp_kit::check_slug("site", &site).map_err(bad)?;
    }
    let lang = text(&params.lang);
    if !lang.is_empty() {
        anp_kit::check_language("lang", &lang).map_err(bad)?;
    }
    if q.trim().is_empty() {
        return Ok(SearchView::default());
    }
    let request = SearchRequest {
        query: q,
        network_slug: network.clone(),
        site_slug: site,
        limit,
        kind: text(&params.kind),
        tag: text(&params.tag),
        lang,
        from: day_param("from", params.from.as_deref(), 0)?,
        to: day_param("to", params.to.as_deref(), 1)?,
        sort: text(&params.sort),
        facets,
        cursor: text(&params.cursor),
    };
    let mut aggregator = state.aggregator.clone();
    let answer = match aggregator
        .search(crate::calendar::bearer(request.clone(), token.as_deref()))
        .await
    {
        // An ended session searches as the public does.
        Err(status) if status.code() == tonic::Code::Unauthenticated && token.is_some() => {
            aggregator.search(request).await
        }
        other => other,
    };
    let response = answer
        .map_err(|status| {
            // The API's field names are the page's parameter names.
            let mut err = PageError::from_status(status);
            err.message = err
                .message
                .replace("network_slug:", "network:")
                .replace("site_slug:", "site:");
            err
        })?
        .into_inner();
    let hits = response
        .hits
        .into_iter()
        .map(|hit| HitView {
            href: match hit.kind.as_str() {
                "post" => post_path(&hit.network_slug, &hit.site_slug, &hit.id),
                "page" => format!("/n/{}/{}/pages/{}", hit.network_slug, hit.site_slug, hit.id),
                "thread" => format!("/n/{}/threads/{}", hit.network_slug, hit.id),
                "event" => {
                    let (event_id, original) = hit.id.split_once('@').unwrap_or((&hit.id, ""));
                    format!(
                        "/n/{}/{}/events/{event_id}?at={original}",
                        hit.network_slug, hit.site_slug
                    )
                }
                _ => format!("/n/{}/{}", hit.network_slug, hit.site_slug),
            },
            published_at: hit
                .published_at
                .map(|at| anp_kit::from_timestamp(Some(&at)).to_rfc3339())
                .unwrap_or_default(),
            id: hit.id,
            kind: hit.kind,
            title: hit.title,
            network_slug: hit.network_slug,
            site_slug: hit.site_slug,
            site_name: hit.site_name,
            lang: hit.lang,
            snippet_html: hit.snippet_html,
            tags: hit.tags,
            visibility: hit.visibility,
        })
        .collect();
    let facets = response
        .facets
        .into_iter()
        .map(|facet| {
            let values = facet
                .values
                .into_iter()
                .map(|value| {
                    // A site is `network/site`: it sets both parameters.
                    let (selected, href) = match facet.field.as_str() {
                        "site" => {
                            let (n, s) = value.value.split_once('/').unwrap_or(("", ""));
                            let selected = params.site.as_deref() == Some(s) && network == n;
                            let href = if selected {
                                params.href(&[("site", "")])
                            } else {
                                params.href(&[("network", n), ("site", s)])
                            };
                            (selected, href)
                        }
                        field => {
                            let param = if field == "network" { "network" } else { field };
                            let current = match param {
                                "network" => &params.network,
                                "kind" => &params.kind,
                                "tag" => &params.tag,
                                _ => &params.lang,
                            };
                            let selected = current.as_deref() == Some(value.value.as_str());
                            let href = match (selected, param) {
                                (true, "network") => params.href(&[("network", ""), ("site", "")]),
                                (true, _) => params.href(&[(param, "")]),
                                (false, _) => params.href(&[(param, value.value.as_str())]),
                            };
                            (selected, href)
                        }
                    };
                    FacetValueView {
                        value: value.value,
                        count: value.count,
                        href,
                        selected,
                    }
                })
                .collect();
            FacetView {
                field: facet.field,
                values,
            }
        })
        .collect();
    Ok(SearchView {
        total: response.total,
        total_is_lower_bound: response.total_is_lower_bound,
        hits,
        facets,
        facets_are_estimates: response.facets_are_estimates,
        next_cursor: response.next_cursor,
    })
}

/// The same search as JSON: `{"total", "total_is_lower_bound", "hits",
/// "facets", "facets_are_estimates", "next_cursor"}`;
/// errors as `{"error": "..."}` with status 400.
pub async fn search_json(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(params): Query<SearchQuery>,
) -> Response {
    let token = crate::calendar::session_token(&headers);
    match run_search(&state, token, &params, (SEARCH_PAGE, true)).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(err) => (
            err.status,
            axum::Json(serde_json::json!({ "error": err.message })),
        )
            .into_response(),
    }
}

pub async fn search(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(params): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let token = crate::calendar::session_token(&headers);
    let view = run_search(&state, token, &params, (SEARCH_PAGE, true)).await?;
    let q = params.q.clone().unwrap_or_default();
    let network = params.network.clone().unwrap_or_default();
    let next_href = (!view.next_cursor.is_empty()).then(|| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("cursor", &view.next_cursor);
        format!("{}&{}", params.href(&[]), query.finish())
    });
    render(
        &state,
        "search.html",
        context! {
            title => if q.is_empty() {
                i18n::here("search-heading")
            } else {
                i18n::text_with(i18n::current(), "search-title", &[("query", i18n::Arg::Text(&q))])
            },
            umbrella_name => state.umbrella_name.clone(),
            query => q,
            search_network => network,
            site => params.site.clone().unwrap_or_default(),
            tag => params.tag.clone().unwrap_or_default(),
            lang => params.lang.clone().unwrap_or_default(),
            kind => params.kind.clone().unwrap_or_default(),
            sort => params.sort.clone().unwrap_or_default(),
            from => params.from.clone().unwrap_or_default(),
            to => params.to.clone().unwrap_or_default(),
            hits => view.hits,
            total => view.total,
            total_is_lower_bound => view.total_is_lower_bound,
            facets => view.facets,
            facets_are_estimates => view.facets_are_estimates,
            next_href => next_href,
            first_page => params.cursor.as_deref().unwrap_or("").is_empty(),
            first_href => params.href(&[]),
            atom_url => (!q.trim().is_empty()).then(|| search_feed_href(&params, FeedFormat::Atom)),
            json_feed_url => (!q.trim().is_empty()).then(|| search_feed_href(&params, FeedFormat::Json)),
        },
    )
}

/// The OpenSearch description: browsers offer to add the umbrella's search
/// (from the page's `<link rel="search">`).
pub async fn opensearch(State(state): State<AppState>) -> Response {
    let name = &state.umbrella_name;
    // At most 16 characters, the specification says.
    let short: String = name.chars().take(16).collect();
    let escape = |text: &str| minijinja::HtmlEscape(text).to_string();
    let base = escape(&state.public_url);
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/">
  <ShortName>{short}</ShortName>
  <Description>{description}</Description>
  <InputEncoding>UTF-8</InputEncoding>
  <Url type="text/html" method="get" template="{base}/search?q={{searchTerms}}"/>
  <Url type="application/atom+xml" method="get" template="{base}/search/feed.atom?q={{searchTerms}}"/>
</OpenSearchDescription>
"#,
        short = escape(&short),
        description = escape(&format!("Search all movements on {name}")),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/opensearchdescription+xml; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// This search, newest first, as a feed.
fn search_feed_href(params: &SearchQuery, format: FeedFormat) -> String {
    let page = params.href(&[("sort", "")]);
    format!(
        "/search/{}{}",
        format.file(),
        page.trim_start_matches("/search")
    )
}

/// The machine-readable forms of a timeline.
#[derive(Debug, Clone, Copy)]
pub enum FeedFormat {
    /// Atom (RFC 4287): the newest entries.
    Atom,
    /// JSON Feed 1.1, paged by `?cursor=`.
    Json,
}

impl FeedFormat {
    fn file(self) -> &'static str {
        match self {
            FeedFormat::Atom => "feed.atom",
            FeedFormat::Json => "feed.json",
        }
    }
}

async fn feed_document(
    state: &AppState,
    scope: FeedScope,
    title: &str,
    path: &str,
    format: FeedFormat,
    cursor: Option<String>,
) -> Result<Response, PageError> {
    let (entries, next_cursor) = feed_page(state, scope, cursor, ATOM_ENTRIES).await?;
    let base = state.public_url.clone();
    let post_url = |entry: &FeedEntry| {
        format!(
            "{base}{}",
            post_path(&entry.network_slug, &entry.site_slug, &entry.id)
        )
    };
    Ok(feed_response(
        state,
        title,
        path,
        format,
        &entries,
        &next_cursor,
        post_url,
    ))
}

/// `entries` as an Atom or JSON Feed document of the page at `path` (the
/// document is at `<path>/feed.atom` or `feed.json`), linking each entry to
/// `entry_url`.
pub(crate) fn feed_response(
    state: &AppState,
    title: &str,
    path: &str,
    format: FeedFormat,
    entries: &[FeedEntry],
    next_cursor: &str,
    entry_url: impl Fn(&FeedEntry) -> String,
) -> Response {
    let base = &state.public_url;
    let self_url = format!("{base}{}/{}", path.trim_end_matches('/'), format.file());
    let next_url = (!next_cursor.is_empty()).then(|| format!("{self_url}?cursor={next_cursor}"));
    feed_document_at(
        format,
        title,
        (&format!("{base}{path}"), &self_url, next_url),
        entries,
        entry_url,
    )
}

/// `entries` as an Atom or JSON Feed document: the page it is the feed of,
/// its own URL and (JSON Feed) its next page's.
fn feed_document_at(
    format: FeedFormat,
    title: &str,
    (page_url, self_url, next_url): (&str, &str, Option<String>),
    entries: &[FeedEntry],
    entry_url: impl Fn(&FeedEntry) -> String,
) -> Response {
    let (content_type, body) = match format {
        FeedFormat::Atom => (
            "application/atom+xml; charset=utf-8",
            atom::render(title, page_url, self_url, entries, entry_url),
        ),
        FeedFormat::Json => (
            crate::jsonfeed::CONTENT_TYPE,
            crate::jsonfeed::render(title, page_url, self_url, next_url, entries, entry_url),
        ),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A search as a feed, to follow it in a feed reader: the public documents
/// that match, newest first; Atom (the newest 50) or JSON Feed (paged by
/// `cursor`). Feed readers carry no session, and none is used: members-only
/// documents never reach a feed reader's cache.
pub async fn search_feed(
    State(state): State<AppState>,
    Query(mut params): Query<SearchQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let q = params.q.clone().unwrap_or_default();
    if q.trim().is_empty() {
        return Err(bad("q: required for the feed of a search".into()));
    }
    params.sort = Some("date".into());
    let view = run_search(&state, None, &params, (ATOM_ENTRIES, false)).await?;
    let mut paths = std::collections::HashMap::new();
    let entries: Vec<FeedEntry> = view
        .hits
        .into_iter()
        .map(|hit| {
            // A post keeps the id it has in every other feed.
            let id = if hit.kind == "post" {
                hit.id
            } else {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, hit.href.as_bytes()).to_string()
            };
            paths.insert(id.clone(), hit.href);
            let at = chrono::DateTime::parse_from_rfc3339(&hit.published_at)
                .ok()
                .map(|at| anp_kit::timestamp(at.with_timezone(&chrono::Utc)));
            FeedEntry {
                id,
                title: hit.title,
                summary_html: hit.snippet_html.clone(),
                body_html: hit.snippet_html,
                site_name: hit.site_name,
                network_slug: hit.network_slug,
                site_slug: hit.site_slug,
                lang: hit.lang,
                author: String::new(),
                published_at: at,
                updated_at: at,
            }
        })
        .collect();
    let base = &state.public_url;
    let page = params.href(&[]);
    let query = page.trim_start_matches("/search");
    let self_url = format!("{base}/search/{}{query}", format.file());
    let next_url = (!view.next_cursor.is_empty()).then(|| {
        let mut cursor = url::form_urlencoded::Serializer::new(String::new());
        cursor.append_pair("cursor", &view.next_cursor);
        format!("{self_url}&{}", cursor.finish())
    });
    Ok(feed_document_at(
        format,
        &format!("“{q}” · {}", state.umbrella_name),
        (&format!("{base}{page}"), &self_url, next_url),
        &entries,
        |entry| {
            let path = paths
                .get(&entry.id)
                .map(String::as_str)
                .unwrap_or("/search");
            format!("{base}{path}")
        },
    ))
}

pub async fn umbrella_feed(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let title = state.umbrella_name.clone();
    feed_document(
        &state,
        FeedScope::default(),
        &title,
        "/",
        format,
        query.cursor,
    )
    .await
}

pub async fn network_feed(
    State(state): State<AppState>,
    Path(network_slug): Path<String>,
    Query(query): Query<PageQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let network = fetch_network(&state, &network_slug).await?;
    let scope = FeedScope {
        network_slug: network_slug.clone(),
        ..Default::default()
    };
    let path = format!("/n/{network_slug}");
    feed_document(&state, scope, &network.name, &path, format, query.cursor).await
}

pub async fn site_feed(
    State(state): State<AppState>,
    Path((network_slug, site_slug)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let site = fetch_site(&state, &network_slug, &site_slug).await?;
    let scope = FeedScope {
        site_id: site.id.clone(),
        ..Default::default()
    };
    let path = format!("/n/{network_slug}/{}", site.slug);
    feed_document(&state, scope, &site.name, &path, format, query.cursor).await
}

/// "Posts in Spanish": the language's name when the gateway has one, else
/// its code.
fn posts_in_language(code: &str) -> String {
    i18n::text_with(
        i18n::current(),
        "posts-in-language",
        &[("code", i18n::Arg::Text(code))],
    )
}

/// A tag's or a language's timeline: its scope, title and path.
fn topic(kind: &str, value: &str) -> Result<(FeedScope, String, String), PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, i18n::here("error-no-page"));
    match kind {
        "tags" => {
            if value.is_empty()
                || value.chars().count() > 40
                || !value
                    .chars()
                    .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '-')
            {
                return Err(not_found());
            }
            Ok((
                FeedScope {
                    tag: value.to_owned(),
                    ..Default::default()
                },
                format!("#{value}"),
                format!("/tags/{value}"),
            ))
        }
        "lang" => {
            anp_kit::check_language("lang", value).map_err(|_| not_found())?;
            Ok((
                FeedScope {
                    lang: value.to_owned(),
                    ..Default::default()
                },
                posts_in_language(value),
                format!("/lang/{value}"),
            ))
        }
        _ => Err(not_found()),
    }
}

pub async fn topic_feed(
    State(state): State<AppState>,
    Path((kind, value)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    format: FeedFormat,
) -> Result<Response, PageError> {
    let (scope, title, path) = topic(&kind, &value)?;
    feed_document(&state, scope, &title, &path, format, query.cursor).await
}

/// Every public post with a tag (`/tags/<tag>`) or in a language
/// (`/lang/<code>`), across networks.
pub async fn topic_page(
    State(state): State<AppState>,
    Path((kind, value)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let (scope, heading, path) = topic(&kind, &value)?;
    let (entries, next_cursor) = feed_page(&state, scope, query.cursor, FEED_PAGE).await?;
    render_feed(
        &state,
        FeedPage {
            upcoming: vec![],
            calendar_href: String::new(),
            heading,
            notice: String::new(),
            directory: None,
            description: String::new(),
            path,
            crumbs: vec![],
            sites_heading: String::new(),
            sites: vec![],
            menu: vec![],
            social: vec![],
            threads: vec![],
            search_network: String::new(),
            entries,
            next_cursor,
        },
    )
}

pub async fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, i18n::here("error-no-page"))
}
