//! A site's static pages ("About us", "Contact"), ordered in its menu.
//! Editors write them; everyone reads them.

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent};
use anp_kit::{Caller, check_slug, check_text};
use anp_proto::content::v1::{
    CreatePageRequest, DeletePageRequest, EditPageRequest, GetPageRequest, ListPagesRequest,
    ListPagesResponse, Page, ReorderPagesRequest,
};
use anp_proto::events::v1::{PageCreated, PageDeleted, PageEdited, PageState};
use anp_proto::sites::v1::Scope;
use chrono::Utc;
use prost::Message;
use tokio_postgres::GenericClient;
use tracing::info;
use uuid::Uuid;

use crate::posts::{BODY_MAX_BYTES, TITLE_MAX_CHARS};
use crate::{Content, ContentError, render, state};

/// Pages a site may have.
pub const PAGES_MAX: i64 = 50;

#[derive(Debug, Clone)]
pub struct PageAggregate {
    pub state: PageState,
    pub version: u64,
}

pub fn page_stream(page_id: Uuid) -> String {
    format!("page-{page_id}")
}

/// The page after its events (each carries the whole page).
pub fn fold_page(events: &[RecordedEvent]) -> Result<Option<PageAggregate>, ContentError> {
    let mut aggregate = None;
    for event in events {
        let corrupt = |message: String| ContentError::Corrupt {
            event_id: event.event_id,
            message,
        };
        let payload = event.payload.as_slice();
        let page = match event.event_type.as_str() {
            "PageCreated" => PageCreated::decode(payload).map(|e| e.page),
            "PageEdited" => PageEdited::decode(payload).map(|e| e.page),
            "PageDeleted" => PageDeleted::decode(payload).map(|e| e.page),
            other => return Err(corrupt(format!("unknown event type {other}"))),
        }
        .map_err(|err| corrupt(err.to_string()))?
        .ok_or_else(|| corrupt("missing page".into()))?;
        aggregate = Some(PageAggregate {
            state: page,
            version: event.version,
        });
    }
    Ok(aggregate)
}

fn encode(event_type: &str, page: &PageState) -> Vec<u8> {
    let page = Some(page.clone());
    match event_type {
        "PageCreated" => PageCreated { page }.encode_to_vec(),
        "PageDeleted" => PageDeleted { page }.encode_to_vec(),
        _ => PageEdited { page }.encode_to_vec(),
    }
}

pub fn to_page(aggregate: &PageAggregate) -> Page {
    let page = &aggregate.state;
    Page {
        id: page.page_id.clone(),
        network_slug: page.network_slug.clone(),
        site_id: page.site_id.clone(),
        site_slug: page.site_slug.clone(),
        slug: page.slug.clone(),
        title: page.title.clone(),
        body_markdown: page.body_markdown.clone(),
        body_html: page.body_html.clone(),
        lang: page.lang.clone(),
        position: page.position,
        version: aggregate.version,
        updated_at: page.updated_at,
    }
}

fn invalid(message: impl Into<String>) -> ContentError {
    ContentError::Invalid(message.into())
}

fn check_page(title: &str, body: &str, lang: &str) -> Result<(), ContentError> {
    check_text("title", title, TITLE_MAX_CHARS).map_err(ContentError::Invalid)?;
    if body.len() > BODY_MAX_BYTES || body.contains('\0') {
        return Err(invalid(format!(
            "body_markdown: at most {BODY_MAX_BYTES} bytes, without NUL characters"
        )));
    }
    anp_kit::check_language("lang", lang).map_err(invalid)
}

fn parse_page_id(field: &str, value: &str) -> Result<Uuid, ContentError> {
    value
        .parse()
        .map_err(|_| invalid(format!("{field}: {value:?} is not a UUID")))
}

fn site_scope(network_slug: &str, site_slug: &str) -> Result<Scope, ContentError> {
    check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
    check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
    Ok(Scope {
        network_slug: network_slug.to_owned(),
        site_slug: site_slug.to_owned(),
        site_id: String::new(),
    })
}

fn stamp() -> Option<prost_types::Timestamp> {
    Some(anp_kit::timestamp(Utc::now()))
}

impl Content {
    /// Appends a page event and records the page, through the caller's
    /// transaction.
    async fn save_page<C: GenericClient>(
        client: &C,
        event_type: &str,
        page: &PageState,
        expected: ExpectedVersion,
        caller: &Caller,
    ) -> Result<PageAggregate, ContentError> {
        let page_id = parse_page_id("page_id", &page.page_id)?;
        let corrupt = |what: &str| ContentError::Corrupt {
            event_id: Uuid::nil(),
            message: format!("page {what}"),
        };
        let event = NewEvent::new(
            event_type,
            page.network_id.parse().map_err(|_| corrupt("network_id"))?,
            &caller.actor,
            encode(event_type, page),
        )
        .with_site(page.site_id.parse().map_err(|_| corrupt("site_id"))?)
        .with_traceparent(caller.traceparent.clone());
        let recorded =
            anp_eventstore::append_in(client, &page_stream(page_id), expected, &[event]).await?;
        let version = recorded.last().map_or(1, |event| event.version);
        state::write_page(client, page, version).await?;
        info!(%page_id, event_type, version, "page saved");
        Ok(PageAggregate {
            state: page.clone(),
            version,
        })
    }

    async fn load_page(&self, page_id: Uuid) -> Result<PageAggregate, ContentError> {
        let events = self.store.load_stream(&page_stream(page_id)).await?;
        fold_page(&events)?
            .filter(|page| !page.state.deleted)
            .ok_or_else(|| ContentError::NotFound(format!("page_id: no page {page_id}")))
    }

    pub async fn create_page(
        &self,
        request: &CreatePageRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Page, ContentError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        check_slug("slug", &request.slug).map_err(ContentError::Invalid)?;
        let lang = if request.lang.is_empty() {
            "en"
        } else {
            request.lang.as_str()
        };
        check_page(&request.title, &request.body_markdown, lang)?;
        let access = self.authorize(token, scope).await?;
        let site = access.site.unwrap_or_default();
        let site_id: Uuid = site
            .id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))?;
        let mut client = self.pool().await?;
        let tx = client
            .transaction()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        // One page at a time per site: the count and the position hold.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('anp-pages-' || $1::text))",
            &[&site_id.to_string()],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
        let row = tx
            .query_one(
                "SELECT count(*), COALESCE(max(position), 0) FROM pages \
                 WHERE site_id = $1 AND NOT deleted",
                &[&site_id],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let (count, last): (i64, i32) = (row.get(0), row.get(1));
        if count >= PAGES_MAX {
            return Err(ContentError::Exhausted(format!(
                "pages: a site has at most {PAGES_MAX}"
            )));
        }
        let page = PageState {
            page_id: Uuid::now_v7().to_string(),
            network_id: site.network_id.clone(),
            network_slug: site.network_slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            slug: request.slug.clone(),
            title: request.title.trim().to_owned(),
            body_markdown: request.body_markdown.clone(),
            body_html: render::markdown_to_safe_html(&request.body_markdown),
            lang: lang.to_owned(),
            position: last + 1,
            deleted: false,
            author: caller.actor.clone(),
            updated_at: stamp(),
        };
        let saved = Self::save_page(
            &*tx,
            "PageCreated",
            &page,
            ExpectedVersion::NoStream,
            &caller,
        )
        .await?;
        tx.commit()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        Ok(to_page(&saved))
    }

    /// Loads a live page, checks the caller edits its site, lets `change`
    /// change it, and saves it as `event_type`.
    async fn change_page(
        &self,
        page_id: &str,
        expected_version: u64,
        event_type: &str,
        caller: Caller,
        token: &str,
        change: impl FnOnce(&mut PageState, &anp_proto::sites::v1::Access) -> Result<(), ContentError>,
    ) -> Result<Page, ContentError> {
        let id = parse_page_id("page_id", page_id)?;
        let current = self.load_page(id).await?;
        let access = self
            .authorize(
                token,
                Scope {
                    site_id: current.state.site_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        if expected_version != 0 && expected_version != current.version {
            return Err(ContentError::VersionMismatch {
                post_id: page_id.to_owned(),
                expected: expected_version,
                actual: current.version,
            });
        }
        let mut page = current.state.clone();
        change(&mut page, &access)?;
        page.updated_at = stamp();
        let mut client = self.pool().await?;
        let tx = client
            .transaction()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let saved = Self::save_page(
            &*tx,
            event_type,
            &page,
            ExpectedVersion::Exact(current.version),
            &caller,
        )
        .await?;
        tx.commit()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        Ok(to_page(&saved))
    }

    pub async fn edit_page(
        &self,
        request: &EditPageRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Page, ContentError> {
        self.change_page(
            &request.page_id,
            request.expected_version,
            "PageEdited",
            caller,
            token,
            |page, access| {
                let lang = if request.lang.is_empty() {
                    page.lang.clone()
                } else {
                    request.lang.clone()
                };
                check_page(&request.title, &request.body_markdown, &lang)?;
                if !request.slug.is_empty() {
                    check_slug("slug", &request.slug).map_err(ContentError::Invalid)?;
                    page.slug = request.slug.clone();
                }
                if let Some(site) = &access.site {
                    page.site_slug = site.slug.clone();
                }
                page.title = request.title.trim().to_owned();
                page.body_markdown = request.body_markdown.clone();
                page.body_html = render::markdown_to_safe_html(&request.body_markdown);
                page.lang = lang;
                Ok(())
            },
        )
        .await
    }

    pub async fn delete_page(
        &self,
        request: &DeletePageRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Page, ContentError> {
        self.change_page(
            &request.page_id,
            0,
            "PageDeleted",
            caller,
            token,
            |page, _| {
                page.deleted = true;
                Ok(())
            },
        )
        .await
    }

    /// The site's id, from the sites service (public).
    async fn site_id(&self, scope: Scope) -> Result<Uuid, ContentError> {
        let access = self.access(None, scope).await?;
        access
            .site
            .unwrap_or_default()
            .id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))
    }

    /// A page by its site and slug, or by its id (`slug` holding the id).
    pub async fn get_page(&self, request: &GetPageRequest) -> Result<Page, ContentError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let not_found = || ContentError::NotFound(format!("slug: no page {:?}", request.slug));
        let page_id = match request.slug.parse::<Uuid>() {
            Ok(page_id) => page_id,
            Err(_) => {
                check_slug("slug", &request.slug).map_err(ContentError::Invalid)?;
                let site_id = self.site_id(scope.clone()).await?;
                let client = self.pool().await?;
                client
                    .query_opt(
                        "SELECT page_id FROM pages WHERE site_id = $1 AND slug = $2 AND NOT deleted",
                        &[&site_id, &request.slug],
                    )
                    .await
                    .map_err(anp_eventstore::StoreError::from)?
                    .ok_or_else(not_found)?
                    .get(0)
            }
        };
        let page = self.load_page(page_id).await.map_err(|_| not_found())?;
        let site_id = self.site_id(scope).await?;
        if page.state.site_id != site_id.to_string() {
            return Err(not_found());
        }
        Ok(to_page(&page))
    }

    /// The site's menu: its pages in order, without their bodies.
    pub async fn list_pages(
        &self,
        request: &ListPagesRequest,
    ) -> Result<ListPagesResponse, ContentError> {
        let site_id = self
            .site_id(site_scope(&request.network_slug, &request.site_slug)?)
            .await?;
        let client = self.pool().await?;
        menu(&**client, site_id).await
    }

    pub async fn reorder_pages(
        &self,
        request: &ReorderPagesRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ListPagesResponse, ContentError> {
        let scope = site_scope(&request.network_slug, &request.site_slug)?;
        let mut wanted = Vec::with_capacity(request.page_ids.len());
        for id in &request.page_ids {
            wanted.push(parse_page_id("page_ids", id)?);
        }
        let access = self.authorize(token, scope).await?;
        let site_id: Uuid = access
            .site
            .unwrap_or_default()
            .id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))?;
        let mut client = self.pool().await?;
        let tx = client
            .transaction()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('anp-pages-' || $1::text))",
            &[&site_id.to_string()],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
        let rows = tx
            .query(
                "SELECT page_id, position FROM pages WHERE site_id = $1 AND NOT deleted",
                &[&site_id],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let mut current: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut sorted = wanted.clone();
        sorted.sort();
        sorted.dedup();
        current.sort();
        let listed: Vec<Uuid> = current.iter().map(|(id, _)| *id).collect();
        if sorted.len() != wanted.len() || sorted != listed {
            return Err(invalid(
                "page_ids: list every page of the site exactly once",
            ));
        }
        for (index, page_id) in wanted.iter().enumerate() {
            let position = index as i32 + 1;
            if current
                .iter()
                .any(|(id, at)| id == page_id && *at == position)
            {
                continue;
            }
            let events = anp_eventstore::load_stream_in(&*tx, &page_stream(*page_id)).await?;
            let Some(page) = fold_page(&events)? else {
                continue;
            };
            let mut state = page.state.clone();
            state.position = position;
            state.updated_at = stamp();
            Self::save_page(
                &*tx,
                "PageEdited",
                &state,
                ExpectedVersion::Exact(page.version),
                &caller,
            )
            .await?;
        }
        let reply = menu(&*tx, site_id).await?;
        tx.commit()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        Ok(reply)
    }
}

/// The menu from the table: ids, slugs, titles and positions.
async fn menu<C: GenericClient>(
    client: &C,
    site_id: Uuid,
) -> Result<ListPagesResponse, ContentError> {
    let rows = client
        .query(
            "SELECT page_id, slug, title, position, version FROM pages \
             WHERE site_id = $1 AND NOT deleted ORDER BY position, slug",
            &[&site_id],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
    let pages = rows
        .iter()
        .map(|row| Page {
            id: row.get::<_, Uuid>(0).to_string(),
            site_id: site_id.to_string(),
            slug: row.get(1),
            title: row.get(2),
            position: row.get(3),
            version: row.get::<_, i64>(4) as u64,
            ..Default::default()
        })
        .collect();
    Ok(ListPagesResponse { pages })
}
