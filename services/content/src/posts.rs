//! Posts: drafts, scheduled and published posts, edits, retraction, tags,
//! visibility and history. Every event carries the whole post as it is
//! after the event, so any reader (the aggregator, an import) needs only the
//! latest one.

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent};
use anp_kit::{Caller, check_slug, check_text};
use anp_proto::content::v1::{
    EditPostRequest, ListPostsRequest, ListPostsResponse, Post, PostHistory, PostVersion,
    PublishDraftRequest, PublishPostRequest, RetractPostRequest,
};
use anp_proto::events::v1::{
    PostDrafted, PostEdited, PostPublished, PostRetracted, PostScheduled, PostState,
};
use anp_proto::sites::v1::{Access, NetworkStatus, Role, Scope};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use prost::Message;
use tracing::info;
use uuid::Uuid;

use crate::{Content, ContentError, render, state};

pub const TITLE_MAX_CHARS: usize = 200;
pub const BODY_MAX_BYTES: usize = 256 * 1024;
pub const VISIBILITIES: &[&str] = &["public", "network", "site"];
pub const STATUSES: &[&str] = &["draft", "scheduled", "published", "retracted"];
pub const TAGS_MAX: usize = 10;
pub const TAG_MAX_CHARS: usize = 40;
pub const REASON_MAX_CHARS: usize = 500;
/// How far ahead a post may be scheduled.
pub const SCHEDULE_MAX_DAYS: i64 = 366;
pub const LIST_MAX: u32 = 100;

/// A post as folded from its events.
#[derive(Debug, Clone)]
pub struct PostAggregate {
    pub state: PostState,
    pub version: u64,
}

/// The status of a post; older events (before drafts) mean published.
pub fn status_of(state: &PostState) -> &str {
    if state.status.is_empty() {
        "published"
    } else {
        &state.status
    }
}

/// Who may read a post; older events mean public.
pub fn visibility_of(state: &PostState) -> &str {
    if state.visibility.is_empty() {
        "public"
    } else {
        &state.visibility
    }
}

pub fn stream_id(post_id: Uuid) -> String {
    format!("post-{post_id}")
}

/// The post after its events (each carries the whole post).
pub fn fold(events: &[RecordedEvent]) -> Result<Option<PostAggregate>, ContentError> {
    let mut aggregate: Option<PostAggregate> = None;
    for event in events {
        let corrupt = |message: String| ContentError::Corrupt {
            event_id: event.event_id,
            message,
        };
        let payload = event.payload.as_slice();
        let state = match event.event_type.as_str() {
            "PostPublished" => PostPublished::decode(payload).map(|e| e.post),
            "PostEdited" => PostEdited::decode(payload).map(|e| e.post),
            "PostDrafted" => PostDrafted::decode(payload).map(|e| e.post),
            "PostScheduled" => PostScheduled::decode(payload).map(|e| e.post),
            "PostRetracted" => PostRetracted::decode(payload).map(|e| e.post),
            // The whole post is the first field of every post event.
            "PostShareRequested" | "PostShareDecided" | "PostUnshared" => {
                PostPublished::decode(payload).map(|e| e.post)
            }
            other => return Err(corrupt(format!("unknown event type {other}"))),
        }
        .map_err(|err| corrupt(err.to_string()))?
        .ok_or_else(|| corrupt("missing post".into()))?;
        aggregate = Some(PostAggregate {
            state,
            version: event.version,
        });
    }
    Ok(aggregate)
}

fn encode(event_type: &str, state: &PostState) -> Vec<u8> {
    let post = Some(state.clone());
    match event_type {
        "PostDrafted" => PostDrafted { post }.encode_to_vec(),
        "PostScheduled" => PostScheduled { post }.encode_to_vec(),
        "PostRetracted" => PostRetracted { post }.encode_to_vec(),
        "PostEdited" => PostEdited { post }.encode_to_vec(),
        _ => PostPublished { post }.encode_to_vec(),
    }
}

pub fn to_post(aggregate: &PostAggregate) -> Post {
    let state = &aggregate.state;
    Post {
        id: state.post_id.clone(),
        network_id: state.network_id.clone(),
        network_slug: state.network_slug.clone(),
        site_id: state.site_id.clone(),
        site_slug: state.site_slug.clone(),
        title: state.title.clone(),
        body_markdown: state.body_markdown.clone(),
        body_html: state.body_html.clone(),
        lang: state.lang.clone(),
        version: aggregate.version,
        published_at: state.published_at,
        updated_at: state.updated_at,
        status: status_of(state).to_owned(),
        visibility: visibility_of(state).to_owned(),
        tags: state.tags.clone(),
        publish_at: state.publish_at,
        author: state.author.clone(),
        retraction_reason: state.retraction_reason.clone(),
        shares: state
            .shares
            .iter()
            .map(|share| anp_proto::content::v1::Share {
                network_slug: share.network_slug.clone(),
                site_slug: share.site_slug.clone(),
                site_name: share.site_name.clone(),
                status: share.status.clone(),
            })
            .collect(),
    }
}

fn invalid(message: impl Into<String>) -> ContentError {
    ContentError::Invalid(message.into())
}

fn check_post_fields(title: &str, body: &str, lang: &str) -> Result<(), ContentError> {
    check_text("title", title, TITLE_MAX_CHARS).map_err(ContentError::Invalid)?;
    if body.len() > BODY_MAX_BYTES {
        return Err(invalid(format!(
            "body_markdown: {} bytes, at most {BODY_MAX_BYTES} allowed",
            body.len()
        )));
    }
    if body.contains('\0') {
        return Err(invalid("body_markdown: must not contain NUL characters"));
    }
    anp_kit::check_language("lang", lang).map_err(invalid)
}

/// Tags: at most ten, each 1 to 40 lowercase letters (any script), digits
/// and inner hyphens; duplicates dropped, order kept.
pub fn check_tags(tags: &[String]) -> Result<Vec<String>, ContentError> {
    if tags.len() > TAGS_MAX {
        return Err(invalid(format!("tags: at most {TAGS_MAX}")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        let valid = !tag.is_empty()
            && tag.chars().count() <= TAG_MAX_CHARS
            && tag.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !tag.starts_with('-')
            && !tag.ends_with('-');
        if !valid {
            return Err(invalid(format!(
                "tags: {tag:?} is not a tag (1-{TAG_MAX_CHARS} letters, digits and inner hyphens)"
            )));
        }
        if !checked.contains(&tag) {
            checked.push(tag);
        }
    }
    Ok(checked)
}

fn check_visibility(value: &str) -> Result<String, ContentError> {
    if value.is_empty() {
        return Ok("public".into());
    }
    if VISIBILITIES.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(invalid(format!(
            "visibility: {value:?} is not one of {}",
            VISIBILITIES.join(", ")
        )))
    }
}

/// A publishing time in the future (at most a year ahead), or none for now.
fn check_publish_at(
    publish_at: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ContentError> {
    let Some(at) = publish_at else {
        return Ok(None);
    };
    let at = DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| invalid("publish_at: not a valid time"))?;
    if at <= now {
        return Ok(None);
    }
    if at > now + chrono::Duration::days(SCHEDULE_MAX_DAYS) {
        return Err(invalid(format!(
            "publish_at: at most {SCHEDULE_MAX_DAYS} days ahead"
        )));
    }
    Ok(Some(at))
}

pub(crate) fn parse_post_id(post_id: &str) -> Result<Uuid, ContentError> {
    post_id
        .parse()
        .map_err(|_| invalid(format!("post_id: {post_id:?} is not a UUID")))
}

fn parse_uuid(what: &str, value: &str) -> Result<Uuid, ContentError> {
    value.parse().map_err(|_| ContentError::Corrupt {
        event_id: Uuid::nil(),
        message: format!("{what}: {value:?}"),
    })
}

/// What a caller may read of a post, from their access to its site.
pub fn may_read(access: &Access, state: &PostState) -> bool {
    let role = Role::try_from(access.role).unwrap_or(Role::Unspecified);
    match status_of(state) {
        "draft" | "scheduled" => return role >= Role::Editor,
        _ => {}
    }
    match visibility_of(state) {
        "public" => true,
        "network" => access.network_member || role >= Role::Member,
        _ => role >= Role::Member,
    }
}

/// A retracted post as its readers who are not its editors see it: that it
/// was retracted, and why — not what it said.
fn redacted(mut post: Post) -> Post {
    post.title.clear();
    post.body_markdown.clear();
    post.body_html.clear();
    post.tags.clear();
    post
}

impl Content {
    /// The caller's access to a site, from the sites service (which owns
    /// roles), with the caller's own token if any.
    pub(crate) async fn access(
        &self,
        token: Option<&str>,
        scope: Scope,
    ) -> Result<Access, ContentError> {
        anp_kit::sites_access(&self.sites, token, scope)
            .await
            .map_err(ContentError::Sites)
    }

    /// Editors and above may write, only while the network is active and
    /// the site not archived.
    pub(crate) async fn authorize(
        &self,
        token: &str,
        scope: Scope,
    ) -> Result<Access, ContentError> {
        let access = self.access(Some(token), scope).await?;
        let role = Role::try_from(access.role).unwrap_or(Role::Unspecified);
        let network = access.network.clone().unwrap_or_default();
        let site = access.site.clone().unwrap_or_default();
        if role < Role::Editor {
            return Err(ContentError::Denied(format!(
                "permission: writing posts needs the editor role in site {}/{}",
                network.slug, site.slug
            )));
        }
        if !access.writable {
            return Err(ContentError::Precondition(
                if network.status == NetworkStatus::Suspended as i32 {
                    format!(
                        "network {:?} is suspended: {}",
                        network.slug, network.notice
                    )
                } else {
                    format!("site {}/{} is archived", network.slug, site.slug)
                },
            ));
        }
        Ok(access)
    }

    fn site_scope(site_id: &str) -> Scope {
        Scope {
            site_id: site_id.to_owned(),
            ..Default::default()
        }
    }

    /// Appends one event to a post's stream and records the post's state,
    /// in one transaction.
    async fn save(
        &self,
        event_type: &str,
        state: &PostState,
        expected: ExpectedVersion,
        caller: &Caller,
    ) -> Result<PostAggregate, ContentError> {
        self.save_encoded(
            event_type,
            encode(event_type, state),
            state,
            expected,
            caller,
        )
        .await
    }

    /// [`Self::save`] with the event's payload made by the caller.
    pub(crate) async fn save_encoded(
        &self,
        event_type: &str,
        payload: Vec<u8>,
        state: &PostState,
        expected: ExpectedVersion,
        caller: &Caller,
    ) -> Result<PostAggregate, ContentError> {
        let post_id = parse_uuid("post_id", &state.post_id)?;
        let event = NewEvent::new(
            event_type,
            parse_uuid("network_id", &state.network_id)?,
            &caller.actor,
            payload,
        )
        .with_site(parse_uuid("site_id", &state.site_id)?)
        .with_traceparent(caller.traceparent.clone());
        let mut client = self
            .store
            .pool()
            .get()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let version = if expected == ExpectedVersion::NoStream && state.shares.is_empty() {
            // A new post: its event and its row in one statement.
            state::append_new(&client, &stream_id(post_id), &event, state)
                .await?
                .version
        } else {
            let tx = client
                .transaction()
                .await
                .map_err(anp_eventstore::StoreError::from)?;
            let recorded =
                anp_eventstore::append_cached(&tx, &stream_id(post_id), expected, &[event]).await?;
            let version = recorded.last().map(|event| event.version).unwrap_or(1);
            state::write(&tx, state, version).await?;
            tx.commit()
                .await
                .map_err(anp_eventstore::StoreError::from)?;
            version
        };
        info!(%post_id, event_type, version, "post saved");
        Ok(PostAggregate {
            state: state.clone(),
            version,
        })
    }

    pub async fn publish_post(
        &self,
        request: &PublishPostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let PublishPostRequest {
            network_slug,
            site_slug,
            title,
            body_markdown,
            lang,
            tags,
            visibility,
            draft,
            publish_at,
        } = request;
        let lang = if lang.is_empty() { "en" } else { lang.as_str() };
        check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
        check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
        check_post_fields(title, body_markdown, lang)?;
        let tags = check_tags(tags)?;
        let visibility = check_visibility(visibility)?;
        let now = Utc::now();
        let publish_at = check_publish_at(publish_at.as_ref(), now)?;
        if *draft && publish_at.is_some() {
            return Err(invalid(
                "publish_at: a draft has no publishing time; set one with PublishDraft",
            ));
        }
        let access = self
            .authorize(
                token,
                Scope {
                    network_slug: network_slug.clone(),
                    site_slug: site_slug.clone(),
                    site_id: String::new(),
                },
            )
            .await?;
        let site = access
            .site
            .ok_or_else(|| ContentError::Sites(tonic::Status::internal("access without site")))?;
        let (event_type, status) = match (draft, publish_at) {
            (true, _) => ("PostDrafted", "draft"),
            (false, Some(_)) => ("PostScheduled", "scheduled"),
            (false, None) => ("PostPublished", "published"),
        };
        let stamp = anp_kit::timestamp(now);
        let state = PostState {
            post_id: Uuid::now_v7().to_string(),
            network_id: site.network_id.clone(),
            network_slug: site.network_slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            site_name: site.name.clone(),
            title: title.trim().to_owned(),
            body_markdown: body_markdown.to_owned(),
            body_html: render::markdown_to_safe_html(body_markdown),
            lang: lang.to_owned(),
            author: caller.actor.clone(),
            published_at: (status == "published").then_some(stamp),
            updated_at: Some(stamp),
            status: status.to_owned(),
            visibility,
            tags,
            publish_at: publish_at.map(anp_kit::timestamp),
            retraction_reason: String::new(),
            shares: vec![],
        };
        let saved = self
            .save(event_type, &state, ExpectedVersion::NoStream, &caller)
            .await?;
        Ok(to_post(&saved))
    }

    /// Loads a post and checks the caller may change it.
    async fn load_for_change(
        &self,
        post_id: &str,
        expected_version: u64,
        token: &str,
    ) -> Result<(PostAggregate, Access), ContentError> {
        let id = parse_post_id(post_id)?;
        let current = self.load(id).await?;
        let access = self
            .authorize(token, Self::site_scope(&current.state.site_id))
            .await?;
        if expected_version != 0 && expected_version != current.version {
            return Err(ContentError::VersionMismatch {
                post_id: post_id.to_owned(),
                expected: expected_version,
                actual: current.version,
            });
        }
        Ok((current, access))
    }

    /// The site may have been renamed since: carry its current slug and name.
    fn refresh_site(state: &mut PostState, access: &Access) {
        if let Some(site) = &access.site {
            state.site_slug = site.slug.clone();
            state.site_name = site.name.clone();
        }
    }

    pub async fn edit_post(
        &self,
        request: &EditPostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let (current, access) = self
            .load_for_change(&request.post_id, request.expected_version, token)
            .await?;
        if status_of(&current.state) == "retracted" {
            return Err(ContentError::Precondition(format!(
                "post_id: post {} is retracted",
                request.post_id
            )));
        }
        let lang = if request.lang.is_empty() {
            current.state.lang.as_str()
        } else {
            request.lang.as_str()
        };
        check_post_fields(&request.title, &request.body_markdown, lang)?;
        let mut state = current.state.clone();
        if let Some(tags) = &request.tags {
            state.tags = check_tags(&tags.tags)?;
        }
        if !request.visibility.is_empty() {
            state.visibility = check_visibility(&request.visibility)?;
        }
        Self::refresh_site(&mut state, &access);
        state.title = request.title.trim().to_owned();
        state.body_markdown = request.body_markdown.clone();
        state.body_html = render::markdown_to_safe_html(&request.body_markdown);
        state.lang = lang.to_owned();
        state.updated_at = Some(anp_kit::timestamp(Utc::now()));
        let saved = self
            .save(
                "PostEdited",
                &state,
                ExpectedVersion::Exact(current.version),
                &caller,
            )
            .await?;
        Ok(to_post(&saved))
    }

    pub async fn publish_draft(
        &self,
        request: &PublishDraftRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let now = Utc::now();
        let publish_at = check_publish_at(request.publish_at.as_ref(), now)?;
        let (current, access) = self
            .load_for_change(&request.post_id, request.expected_version, token)
            .await?;
        let status = status_of(&current.state);
        if status != "draft" && status != "scheduled" {
            return Err(ContentError::Precondition(format!(
                "post_id: post {} is {status}, not a draft or scheduled",
                request.post_id
            )));
        }
        let mut state = current.state.clone();
        Self::refresh_site(&mut state, &access);
        let stamp = anp_kit::timestamp(now);
        state.updated_at = Some(stamp);
        state.publish_at = publish_at.map(anp_kit::timestamp);
        let event_type = if publish_at.is_some() {
            state.status = "scheduled".into();
            "PostScheduled"
        } else {
            state.status = "published".into();
            state.published_at = Some(stamp);
            "PostPublished"
        };
        let saved = self
            .save(
                event_type,
                &state,
                ExpectedVersion::Exact(current.version),
                &caller,
            )
            .await?;
        Ok(to_post(&saved))
    }

    pub async fn retract_post(
        &self,
        request: &RetractPostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let reason = request.reason.trim();
        if !reason.is_empty() {
            check_text("reason", reason, REASON_MAX_CHARS).map_err(ContentError::Invalid)?;
        }
        let (current, _) = self.load_for_change(&request.post_id, 0, token).await?;
        if status_of(&current.state) == "retracted" {
            return Ok(to_post(&current));
        }
        let mut state = current.state.clone();
        state.status = "retracted".into();
        state.retraction_reason = reason.to_owned();
        state.updated_at = Some(anp_kit::timestamp(Utc::now()));
        let saved = self
            .save(
                "PostRetracted",
                &state,
                ExpectedVersion::Exact(current.version),
                &caller,
            )
            .await?;
        Ok(to_post(&saved))
    }

    /// A post as the caller may see it: NOT_FOUND when they may not read
    /// it (its existence is not revealed); retracted posts without their
    /// words, except for the site's editors.
    pub async fn get_post(&self, post_id: &str, token: Option<&str>) -> Result<Post, ContentError> {
        let id = parse_post_id(post_id)?;
        let post = self.load(id).await?;
        let not_found = || ContentError::NotFound(format!("post_id: no post {post_id}"));
        let public =
            status_of(&post.state) == "published" && visibility_of(&post.state) == "public";
        if public {
            return Ok(to_post(&post));
        }
        let access = self
            .access(token, Self::site_scope(&post.state.site_id))
            .await
            .map_err(|err| match err {
                ContentError::Sites(status) if status.code() == tonic::Code::Unauthenticated => {
                    ContentError::Sites(status)
                }
                _ => not_found(),
            })?;
        if !may_read(&access, &post.state) {
            return Err(not_found());
        }
        let role = Role::try_from(access.role).unwrap_or(Role::Unspecified);
        if status_of(&post.state) == "retracted" && role < Role::Editor {
            return Ok(redacted(to_post(&post)));
        }
        Ok(to_post(&post))
    }

    /// Every version of a post, newest first; for editors of its site.
    pub async fn post_history(
        &self,
        post_id: &str,
        token: &str,
    ) -> Result<PostHistory, ContentError> {
        let id = parse_post_id(post_id)?;
        let events = self.store.load_stream(&stream_id(id)).await?;
        let Some(latest) = fold(&events)? else {
            return Err(ContentError::NotFound(format!(
                "post_id: no post {post_id}"
            )));
        };
        let access = self
            .access(Some(token), Self::site_scope(&latest.state.site_id))
            .await?;
        if Role::try_from(access.role).unwrap_or(Role::Unspecified) < Role::Editor {
            return Err(ContentError::NotFound(format!(
                "post_id: no post {post_id}"
            )));
        }
        let mut versions = Vec::with_capacity(events.len());
        for event in events.iter().rev() {
            let post = fold(std::slice::from_ref(event))?
                .ok_or_else(|| ContentError::NotFound(format!("post_id: no post {post_id}")))?;
            versions.push(PostVersion {
                version: event.version,
                event_type: event.event_type.clone(),
                actor: event.actor.clone(),
                at: Some(anp_kit::timestamp(event.occurred_at)),
                post: Some(to_post(&post)),
            });
        }
        Ok(PostHistory { versions })
    }

    /// A site's posts of one status, newest first, that the caller may read.
    pub async fn list_posts(
        &self,
        request: &ListPostsRequest,
        token: Option<&str>,
    ) -> Result<ListPostsResponse, ContentError> {
        check_slug("network_slug", &request.network_slug).map_err(ContentError::Invalid)?;
        check_slug("site_slug", &request.site_slug).map_err(ContentError::Invalid)?;
        let status = if request.status.is_empty() {
            "published"
        } else {
            request.status.as_str()
        };
        if !STATUSES.contains(&status) {
            return Err(invalid(format!(
                "status: {status:?} is not one of {}",
                STATUSES.join(", ")
            )));
        }
        let limit = match request.limit {
            0 => 20,
            limit if limit <= LIST_MAX => limit,
            _ => return Err(invalid(format!("limit: at most {LIST_MAX}"))),
        };
        let after = Cursor::decode(&request.cursor)?;
        let access = self
            .access(
                token,
                Scope {
                    network_slug: request.network_slug.clone(),
                    site_slug: request.site_slug.clone(),
                    site_id: String::new(),
                },
            )
            .await?;
        let role = Role::try_from(access.role).unwrap_or(Role::Unspecified);
        if status != "published" && status != "retracted" && role < Role::Editor {
            return Err(ContentError::Denied(format!(
                "permission: {status} posts are for the site's editors"
            )));
        }
        let mut visible: Vec<&str> = vec!["public"];
        if access.network_member || role >= Role::Member {
            visible.push("network");
        }
        if role >= Role::Member {
            visible.push("site");
        }
        let site = access.site.clone().unwrap_or_default();
        let site_id = parse_uuid("site_id", &site.id)?;
        let (after_at, after_id) = match after {
            Some(cursor) => (cursor.at, cursor.post_id),
            None => (DateTime::<Utc>::MAX_UTC, Uuid::max()),
        };
        let rows = {
            let client = self
                .store
                .pool()
                .get()
                .await
                .map_err(anp_eventstore::StoreError::from)?;
            client
                .query(
                    "SELECT post_id, sort_at FROM posts WHERE site_id = $1 AND status = $2 \
                     AND visibility = ANY($3) AND (sort_at, post_id) < ($4, $5) \
                     ORDER BY sort_at DESC, post_id DESC LIMIT $6",
                    &[
                        &site_id,
                        &status,
                        &visible,
                        &after_at,
                        &after_id,
                        &(i64::from(limit) + 1),
                    ],
                )
                .await
                .map_err(anp_eventstore::StoreError::from)?
        };
        let mut posts = Vec::with_capacity(rows.len());
        let mut next_cursor = String::new();
        for (index, row) in rows.iter().enumerate() {
            let post_id: Uuid = row.get(0);
            if index == limit as usize {
                break;
            }
            let post = self.load(post_id).await?;
            let post = to_post(&post);
            posts.push(if status == "retracted" && role < Role::Editor {
                redacted(post)
            } else {
                post
            });
            if index + 1 == limit as usize && rows.len() > limit as usize {
                next_cursor = Cursor {
                    at: row.get(1),
                    post_id,
                }
                .encode();
            }
        }
        Ok(ListPostsResponse { posts, next_cursor })
    }

    pub(crate) async fn load(&self, post_id: Uuid) -> Result<PostAggregate, ContentError> {
        let events = self.store.load_stream(&stream_id(post_id)).await?;
        fold(&events)?.ok_or_else(|| ContentError::NotFound(format!("post_id: no post {post_id}")))
    }
}

/// A place in a list of posts: those strictly older come next.
struct Cursor {
    at: DateTime<Utc>,
    post_id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.at.timestamp_micros(), self.post_id))
    }

    fn decode(text: &str) -> Result<Option<Cursor>, ContentError> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || invalid("cursor: malformed");
        if text.len() > 128 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (micros, post_id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Some(Cursor {
            at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
                .ok_or_else(bad)?,
            post_id: post_id.parse().map_err(|_| bad())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_lowercased_and_deduplicated() {
        let tags = check_tags(&["Climate".into(), "migración".into(), "climate".into()]).unwrap();
        assert_eq!(tags, vec!["climate", "migración"]);
        for bad in ["", "-x", "a b", "<script>", &"x".repeat(41)] {
            let err = check_tags(&[bad.to_owned()]).unwrap_err().to_string();
            assert!(err.starts_with("tags:"), "{bad}: {err}");
        }
        assert!(check_tags(&vec!["a".to_owned(); 11]).is_err());
    }

    #[test]
    fn readers_by_status_and_visibility() {
        let access = |role: Role, network_member: bool| Access {
            role: role as i32,
            network_member,
            ..Default::default()
        };
        let post = |status: &str, visibility: &str| PostState {
            status: status.into(),
            visibility: visibility.into(),
            ..Default::default()
        };
        let anyone = access(Role::Unspecified, false);
        let elsewhere = access(Role::Unspecified, true);
        let member = access(Role::Member, true);
        let editor = access(Role::Editor, true);
        assert!(may_read(&anyone, &post("", "")));
        assert!(may_read(&anyone, &post("retracted", "public")));
        assert!(!may_read(&anyone, &post("published", "network")));
        assert!(may_read(&elsewhere, &post("published", "network")));
        assert!(!may_read(&elsewhere, &post("published", "site")));
        assert!(may_read(&member, &post("published", "site")));
        assert!(!may_read(&member, &post("draft", "public")));
        assert!(may_read(&editor, &post("scheduled", "site")));
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            post_id: Uuid::now_v7(),
        };
        let back = Cursor::decode(&cursor.encode()).unwrap().unwrap();
        assert_eq!((back.at, back.post_id), (cursor.at, cursor.post_id));
        assert!(Cursor::decode("!!").is_err());
        assert!(Cursor::decode(&"a".repeat(200)).is_err());
    }
}
