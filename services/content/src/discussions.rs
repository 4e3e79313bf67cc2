//! Discussions: threads and replies of a site (its members) or of a
//! network's board (the network's members), members-only unless public.
//! Authors edit their own words; moderators — the site's editors and above,
//! or for a board the network's admins — hide, lock and read reports.
//!
//! A thread and its replies are one stream (`thread-<id>`); every event
//! carries the thread (and the reply) as they are after it.

use std::collections::HashMap;

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent};
use anp_kit::{Caller, check_slug, check_text};
use anp_proto::content::v1::{
    EditReplyRequest, EditThreadRequest, GetThreadRequest, ListReportsResponse, ListThreadsRequest,
    ListThreadsResponse, ModerateReplyRequest, ModerateThreadRequest, ReplyRequest, Report,
    ReportRequest, ReportResponse, StartThreadRequest, Thread, ThreadReply, ThreadWithReplies,
};
use anp_proto::events::v1::{
    DiscussionReported, ReplyEdited, ReplyModerated, ReplyPosted, ReplyState, ThreadEdited,
    ThreadModerated, ThreadStarted, ThreadState,
};
use anp_proto::sites::v1::{Access, NetworkStatus, Role, Scope};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use prost::Message;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::posts::TITLE_MAX_CHARS;
use crate::{Content, ContentError, render};

pub const BODY_MAX_BYTES: usize = 64 * 1024;
pub const REASON_MAX_CHARS: usize = 500;
pub const REPLIES_MAX: u32 = 10_000;

/// A thread and its replies, from its stream.
#[derive(Debug, Clone, Default)]
pub struct ThreadAggregate {
    pub thread: ThreadState,
    /// In the order they were posted.
    pub replies: Vec<ReplyState>,
    pub version: u64,
}

pub fn thread_stream(thread_id: Uuid) -> String {
    format!("thread-{thread_id}")
}

/// What one discussion event says: the thread, and the reply if any.
pub fn decode_event(
    event: &RecordedEvent,
) -> Result<(ThreadState, Option<ReplyState>, Option<DiscussionReported>), ContentError> {
    let corrupt = |message: String| ContentError::Corrupt {
        event_id: event.event_id,
        message,
    };
    let payload = event.payload.as_slice();
    let decoded = match event.event_type.as_str() {
        "ThreadStarted" => ThreadStarted::decode(payload).map(|e| (e.thread, None, None)),
        "ThreadEdited" => ThreadEdited::decode(payload).map(|e| (e.thread, None, None)),
        "ThreadModerated" => ThreadModerated::decode(payload).map(|e| (e.thread, None, None)),
        "ReplyPosted" => ReplyPosted::decode(payload).map(|e| (e.thread, e.reply, None)),
        "ReplyEdited" => ReplyEdited::decode(payload).map(|e| (e.thread, e.reply, None)),
        "ReplyModerated" => ReplyModerated::decode(payload).map(|e| (e.thread, e.reply, None)),
        "DiscussionReported" => {
            DiscussionReported::decode(payload).map(|e| (e.thread.clone(), None, Some(e)))
        }
        other => return Err(corrupt(format!("unknown event type {other}"))),
    }
    .map_err(|err| corrupt(err.to_string()))?;
    let (thread, reply, report) = decoded;
    Ok((
        thread.ok_or_else(|| corrupt("missing thread".into()))?,
        reply,
        report,
    ))
}

pub fn fold_thread(events: &[RecordedEvent]) -> Result<Option<ThreadAggregate>, ContentError> {
    let mut aggregate: Option<ThreadAggregate> = None;
    let mut at: HashMap<String, usize> = HashMap::new();
    for event in events {
        let (thread, reply, _) = decode_event(event)?;
        let current = aggregate.get_or_insert_with(ThreadAggregate::default);
        current.thread = thread;
        current.version = event.version;
        if let Some(reply) = reply {
            match at.get(&reply.reply_id) {
                Some(&index) => current.replies[index] = reply,
                None => {
                    at.insert(reply.reply_id.clone(), current.replies.len());
                    current.replies.push(reply);
                }
            }
        }
    }
    Ok(aggregate)
}

fn invalid(message: impl Into<String>) -> ContentError {
    ContentError::Invalid(message.into())
}

fn check_body(body: &str) -> Result<(), ContentError> {
    if body.trim().is_empty() {
        return Err(invalid("body_markdown: must not be empty"));
    }
    if body.len() > BODY_MAX_BYTES || body.contains('\0') {
        return Err(invalid(format!(
            "body_markdown: at most {BODY_MAX_BYTES} bytes, without NUL characters"
        )));
    }
    Ok(())
}

fn parse_id(field: &str, value: &str) -> Result<Uuid, ContentError> {
    value
        .parse()
        .map_err(|_| invalid(format!("{field}: {value:?} is not a UUID")))
}

fn now() -> Option<prost_types::Timestamp> {
    Some(anp_kit::timestamp(Utc::now()))
}

fn role(access: &Access) -> Role {
    Role::try_from(access.role).unwrap_or(Role::Unspecified)
}

/// The caller's standing in a thread's place.
struct Standing {
    access: Access,
    board: bool,
}

impl Standing {
    /// Members of the site; for a board, members of the network.
    fn member(&self) -> bool {
        if self.board {
            self.access.network_member || role(&self.access) >= Role::Member
        } else {
            role(&self.access) >= Role::Member
        }
    }

    fn moderator(&self) -> bool {
        if self.board {
            role(&self.access) >= Role::NetworkAdmin
        } else {
            role(&self.access) >= Role::Editor
        }
    }

    fn may_read(&self, thread: &ThreadState) -> bool {
        if thread.hidden && !self.moderator() && self.access.account_id != thread.author {
            return false;
        }
        thread.visibility == "public" || self.member()
    }

    fn require_moderator(&self) -> Result<(), ContentError> {
        if self.moderator() {
            Ok(())
        } else {
            Err(ContentError::Denied(
                "permission: moderating needs the editor role (network admin for a board)".into(),
            ))
        }
    }

    fn writable(&self) -> Result<(), ContentError> {
        if self.access.writable {
            return Ok(());
        }
        let network = self.access.network.clone().unwrap_or_default();
        Err(ContentError::Precondition(
            if network.status == NetworkStatus::Suspended as i32 {
                format!("network {:?} is suspended", network.slug)
            } else {
                "site_slug: the site is archived".into()
            },
        ))
    }
}

fn to_thread(aggregate: &ThreadAggregate) -> Thread {
    let t = &aggregate.thread;
    Thread {
        id: t.thread_id.clone(),
        network_slug: t.network_slug.clone(),
        site_slug: t.site_slug.clone(),
        title: t.title.clone(),
        body_markdown: t.body_markdown.clone(),
        body_html: t.body_html.clone(),
        author: t.author.clone(),
        visibility: t.visibility.clone(),
        locked: t.locked,
        hidden: t.hidden,
        replies: t.replies,
        created_at: t.created_at,
        updated_at: t.updated_at,
        version: aggregate.version,
    }
}

/// A reply as a reader sees it: hidden ones without their words, except
/// for moderators and their author.
fn to_reply(reply: &ReplyState, standing: &Standing) -> ThreadReply {
    let shown = !reply.hidden || standing.moderator() || standing.access.account_id == reply.author;
    ThreadReply {
        id: reply.reply_id.clone(),
        thread_id: reply.thread_id.clone(),
        body_markdown: if shown {
            reply.body_markdown.clone()
        } else {
            String::new()
        },
        body_html: if shown {
            reply.body_html.clone()
        } else {
            String::new()
        },
        author: reply.author.clone(),
        hidden: reply.hidden,
        created_at: reply.created_at,
        updated_at: reply.updated_at,
    }
}

/// Records what a discussion event changes in the tables.
pub async fn write_tables<C: GenericClient>(
    client: &C,
    event: &RecordedEvent,
) -> Result<(), ContentError> {
    let (thread, reply, report) = decode_event(event)?;
    let corrupt = |what: &str| ContentError::Corrupt {
        event_id: event.event_id,
        message: what.to_owned(),
    };
    let thread_id: Uuid = thread.thread_id.parse().map_err(|_| corrupt("thread_id"))?;
    let network_id: Uuid = thread
        .network_id
        .parse()
        .map_err(|_| corrupt("network_id"))?;
    let site_id: Option<Uuid> = if thread.site_id.is_empty() {
        None
    } else {
        Some(thread.site_id.parse().map_err(|_| corrupt("site_id"))?)
    };
    let version = event.version as i64;
    let store = |err| ContentError::Store(anp_eventstore::StoreError::from(err));
    client
        .execute(
            "INSERT INTO threads (thread_id, network_id, site_id, visibility, hidden, locked, \
               last_activity, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (thread_id) DO UPDATE SET visibility = EXCLUDED.visibility, \
               hidden = EXCLUDED.hidden, locked = EXCLUDED.locked, \
               last_activity = GREATEST(threads.last_activity, EXCLUDED.last_activity), \
               version = EXCLUDED.version WHERE threads.version < EXCLUDED.version",
            &[
                &thread_id,
                &network_id,
                &site_id,
                &thread.visibility,
                &thread.hidden,
                &thread.locked,
                &event.occurred_at,
                &version,
            ],
        )
        .await
        .map_err(store)?;
    if let Some(reply) = reply {
        let reply_id: Uuid = reply.reply_id.parse().map_err(|_| corrupt("reply_id"))?;
        client
            .execute(
                "INSERT INTO replies (reply_id, thread_id, network_id, author, hidden, created_at, \
                   version) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (reply_id) DO UPDATE SET hidden = EXCLUDED.hidden, \
                   version = EXCLUDED.version WHERE replies.version < EXCLUDED.version",
                &[
                    &reply_id,
                    &thread_id,
                    &network_id,
                    &reply.author,
                    &reply.hidden,
                    &anp_kit::from_timestamp(reply.created_at.as_ref()),
                    &version,
                ],
            )
            .await
            .map_err(store)?;
    }
    if let Some(report) = report {
        let report_id: Uuid = report.report_id.parse().map_err(|_| corrupt("report_id"))?;
        let reply_id: Option<Uuid> = if report.reply_id.is_empty() {
            None
        } else {
            Some(report.reply_id.parse().map_err(|_| corrupt("reply_id"))?)
        };
        client
            .execute(
                "INSERT INTO discussion_reports (report_id, thread_id, reply_id, network_id, \
                   site_id, reporter, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (report_id) DO NOTHING",
                &[
                    &report_id,
                    &thread_id,
                    &reply_id,
                    &network_id,
                    &site_id,
                    &report.reporter,
                    &report.reason,
                    &event.occurred_at,
                ],
            )
            .await
            .map_err(store)?;
    }
    Ok(())
}

/// A place in a list of threads: those less recently active come next.
struct Cursor {
    at: DateTime<Utc>,
    id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.at.timestamp_micros(), self.id))
    }

    fn decode(text: &str) -> Result<Option<Cursor>, ContentError> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || invalid("cursor: malformed");
        if text.len() > 128 {
            return Err(bad());
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?)
            .map_err(|_| bad())?;
        let (micros, id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Some(Cursor {
            at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
                .ok_or_else(bad)?,
            id: id.parse().map_err(|_| bad())?,
        }))
    }
}

impl Content {
    /// The caller's standing in a place: a site, or a network's board.
    async fn standing(
        &self,
        token: Option<&str>,
        network_slug: &str,
        site_slug: &str,
    ) -> Result<Standing, ContentError> {
        check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
        if !site_slug.is_empty() {
            check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
        }
        let access = self
            .access(
                token,
                Scope {
                    network_slug: network_slug.to_owned(),
                    site_slug: site_slug.to_owned(),
                    site_id: String::new(),
                },
            )
            .await?;
        Ok(Standing {
            access,
            board: site_slug.is_empty(),
        })
    }

    async fn standing_in(
        &self,
        token: Option<&str>,
        thread: &ThreadState,
    ) -> Result<Standing, ContentError> {
        let access = self
            .access(
                token,
                if thread.site_id.is_empty() {
                    Scope {
                        network_slug: thread.network_slug.clone(),
                        ..Default::default()
                    }
                } else {
                    Scope {
                        site_id: thread.site_id.clone(),
                        ..Default::default()
                    }
                },
            )
            .await?;
        Ok(Standing {
            access,
            board: thread.site_id.is_empty(),
        })
    }

    /// A thread and the caller's standing in its place; `NOT_FOUND` when
    /// they may not read it.
    async fn open_thread(
        &self,
        thread_id: &str,
        token: Option<&str>,
    ) -> Result<(ThreadAggregate, Standing), ContentError> {
        let current = self.load_thread(parse_id("thread_id", thread_id)?).await?;
        let standing = self.standing_in(token, &current.thread).await?;
        if !standing.may_read(&current.thread) {
            return Err(ContentError::NotFound(format!(
                "thread_id: no thread {thread_id}"
            )));
        }
        Ok((current, standing))
    }

    /// A reply, its thread and the caller's standing; `NOT_FOUND` when they
    /// may not read it.
    async fn open_reply(
        &self,
        reply_id: &str,
        token: &str,
    ) -> Result<(ThreadAggregate, ReplyState, Standing), ContentError> {
        let (current, reply) = self.load_reply(reply_id).await?;
        let standing = self.standing_in(Some(token), &current.thread).await?;
        if !standing.may_read(&current.thread) {
            return Err(ContentError::NotFound(format!(
                "reply_id: no reply {reply_id}"
            )));
        }
        Ok((current, reply, standing))
    }

    async fn load_thread(&self, thread_id: Uuid) -> Result<ThreadAggregate, ContentError> {
        let events = self.store.load_stream(&thread_stream(thread_id)).await?;
        fold_thread(&events)?
            .ok_or_else(|| ContentError::NotFound(format!("thread_id: no thread {thread_id}")))
    }

    /// Appends one discussion event and updates the tables, in one transaction.
    async fn record(
        &self,
        event_type: &str,
        payload: Vec<u8>,
        thread: &ThreadState,
        expected: ExpectedVersion,
        caller: &Caller,
    ) -> Result<u64, ContentError> {
        let thread_id: Uuid = thread.thread_id.parse().map_err(|_| invalid("thread_id"))?;
        let mut event = NewEvent::new(
            event_type,
            thread
                .network_id
                .parse()
                .map_err(|_| invalid("network_id"))?,
            &caller.actor,
            payload,
        )
        .with_traceparent(caller.traceparent.clone());
        if !thread.site_id.is_empty() {
            event = event.with_site(thread.site_id.parse().map_err(|_| invalid("site_id"))?);
        }
        let mut client = self.pool().await?;
        let tx = client
            .transaction()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let recorded =
            anp_eventstore::append_in(&*tx, &thread_stream(thread_id), expected, &[event]).await?;
        for event in &recorded {
            write_tables(&*tx, event).await?;
        }
        tx.commit()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        Ok(recorded.last().map_or(1, |event| event.version))
    }

    pub async fn start_thread(
        &self,
        request: &StartThreadRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Thread, ContentError> {
        check_text("title", &request.title, TITLE_MAX_CHARS).map_err(ContentError::Invalid)?;
        check_body(&request.body_markdown)?;
        let visibility = match request.visibility.as_str() {
            "" | "members" => "members",
            "public" => "public",
            other => {
                return Err(invalid(format!(
                    "visibility: {other:?} is not members or public"
                )));
            }
        };
        let lang = if request.lang.is_empty() {
            "en"
        } else {
            request.lang.as_str()
        };
        anp_kit::check_language("lang", lang).map_err(invalid)?;
        let standing = self
            .standing(Some(token), &request.network_slug, &request.site_slug)
            .await?;
        if !standing.member() {
            return Err(ContentError::Denied(
                "permission: discussions are for members".into(),
            ));
        }
        standing.writable()?;
        let network = standing.access.network.clone().unwrap_or_default();
        let site = standing.access.site.clone().unwrap_or_default();
        let thread = ThreadState {
            thread_id: Uuid::now_v7().to_string(),
            network_id: network.id.clone(),
            network_slug: network.slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            title: request.title.trim().to_owned(),
            body_markdown: request.body_markdown.clone(),
            body_html: render::markdown_to_safe_html(&request.body_markdown),
            author: caller.actor.clone(),
            visibility: visibility.to_owned(),
            locked: false,
            hidden: false,
            replies: 0,
            created_at: now(),
            updated_at: now(),
            lang: lang.to_owned(),
        };
        let payload = ThreadStarted {
            thread: Some(thread.clone()),
        }
        .encode_to_vec();
        let version = self
            .record(
                "ThreadStarted",
                payload,
                &thread,
                ExpectedVersion::NoStream,
                &caller,
            )
            .await?;
        Ok(to_thread(&ThreadAggregate {
            thread,
            replies: vec![],
            version,
        }))
    }

    pub async fn reply(
        &self,
        request: &ReplyRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ThreadReply, ContentError> {
        check_body(&request.body_markdown)?;
        let (current, standing) = self.open_thread(&request.thread_id, Some(token)).await?;
        if !standing.member() {
            return Err(ContentError::Denied(
                "permission: replies are for members".into(),
            ));
        }
        standing.writable()?;
        if current.thread.locked || current.thread.hidden {
            return Err(ContentError::Precondition(format!(
                "thread_id: thread {} is closed to replies",
                request.thread_id
            )));
        }
        if current.thread.replies >= REPLIES_MAX {
            return Err(ContentError::Exhausted(format!(
                "replies: a thread has at most {REPLIES_MAX}"
            )));
        }
        let mut thread = current.thread.clone();
        thread.replies += 1;
        let reply = ReplyState {
            reply_id: Uuid::now_v7().to_string(),
            thread_id: thread.thread_id.clone(),
            body_markdown: request.body_markdown.clone(),
            body_html: render::markdown_to_safe_html(&request.body_markdown),
            author: caller.actor.clone(),
            hidden: false,
            created_at: now(),
            updated_at: now(),
        };
        let payload = ReplyPosted {
            thread: Some(thread.clone()),
            reply: Some(reply.clone()),
        }
        .encode_to_vec();
        self.record(
            "ReplyPosted",
            payload,
            &thread,
            ExpectedVersion::Exact(current.version),
            &caller,
        )
        .await?;
        Ok(to_reply(&reply, &standing))
    }

    pub async fn edit_thread(
        &self,
        request: &EditThreadRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Thread, ContentError> {
        check_text("title", &request.title, TITLE_MAX_CHARS).map_err(ContentError::Invalid)?;
        check_body(&request.body_markdown)?;
        let (current, standing) = self.open_thread(&request.thread_id, Some(token)).await?;
        if current.thread.author != caller.actor {
            return Err(ContentError::Denied(
                "permission: only its author edits a thread".into(),
            ));
        }
        standing.writable()?;
        let mut thread = current.thread.clone();
        thread.title = request.title.trim().to_owned();
        thread.body_markdown = request.body_markdown.clone();
        thread.body_html = render::markdown_to_safe_html(&request.body_markdown);
        thread.updated_at = now();
        let payload = ThreadEdited {
            thread: Some(thread.clone()),
        }
        .encode_to_vec();
        let version = self
            .record(
                "ThreadEdited",
                payload,
                &thread,
                ExpectedVersion::Exact(current.version),
                &caller,
            )
            .await?;
        Ok(to_thread(&ThreadAggregate {
            thread,
            replies: vec![],
            version,
        }))
    }

    /// The thread a reply is in, from the table.
    async fn thread_of_reply(&self, reply_id: Uuid) -> Result<Uuid, ContentError> {
        let client = self.pool().await?;
        Ok(client
            .query_opt(
                "SELECT thread_id FROM replies WHERE reply_id = $1",
                &[&reply_id],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?
            .ok_or_else(|| ContentError::NotFound(format!("reply_id: no reply {reply_id}")))?
            .get(0))
    }

    async fn load_reply(
        &self,
        reply_id: &str,
    ) -> Result<(ThreadAggregate, ReplyState), ContentError> {
        let id = parse_id("reply_id", reply_id)?;
        let current = self.load_thread(self.thread_of_reply(id).await?).await?;
        let reply = current
            .replies
            .iter()
            .find(|reply| reply.reply_id == reply_id)
            .cloned()
            .ok_or_else(|| ContentError::NotFound(format!("reply_id: no reply {reply_id}")))?;
        Ok((current, reply))
    }

    pub async fn edit_reply(
        &self,
        request: &EditReplyRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ThreadReply, ContentError> {
        check_body(&request.body_markdown)?;
        let (current, mut reply, standing) = self.open_reply(&request.reply_id, token).await?;
        if reply.author != caller.actor {
            return Err(ContentError::Denied(
                "permission: only its author edits a reply".into(),
            ));
        }
        standing.writable()?;
        reply.body_markdown = request.body_markdown.clone();
        reply.body_html = render::markdown_to_safe_html(&request.body_markdown);
        reply.updated_at = now();
        let payload = ReplyEdited {
            thread: Some(current.thread.clone()),
            reply: Some(reply.clone()),
        }
        .encode_to_vec();
        self.record(
            "ReplyEdited",
            payload,
            &current.thread,
            ExpectedVersion::Exact(current.version),
            &caller,
        )
        .await?;
        Ok(to_reply(&reply, &standing))
    }

    pub async fn moderate_thread(
        &self,
        request: &ModerateThreadRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Thread, ContentError> {
        let (current, standing) = self.open_thread(&request.thread_id, Some(token)).await?;
        standing.require_moderator()?;
        let mut thread = current.thread.clone();
        match request.action.as_str() {
            "hide" => thread.hidden = true,
            "unhide" => thread.hidden = false,
            "lock" => thread.locked = true,
            "unlock" => thread.locked = false,
            other => {
                return Err(invalid(format!(
                    "action: {other:?} is not hide, unhide, lock or unlock"
                )));
            }
        }
        thread.updated_at = now();
        let payload = ThreadModerated {
            thread: Some(thread.clone()),
            action: request.action.clone(),
        }
        .encode_to_vec();
        let version = self
            .record(
                "ThreadModerated",
                payload,
                &thread,
                ExpectedVersion::Exact(current.version),
                &caller,
            )
            .await?;
        Ok(to_thread(&ThreadAggregate {
            thread,
            replies: vec![],
            version,
        }))
    }

    pub async fn moderate_reply(
        &self,
        request: &ModerateReplyRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ThreadReply, ContentError> {
        let hidden = match request.action.as_str() {
            "hide" => true,
            "unhide" => false,
            other => return Err(invalid(format!("action: {other:?} is not hide or unhide"))),
        };
        let (current, mut reply, standing) = self.open_reply(&request.reply_id, token).await?;
        standing.require_moderator()?;
        reply.hidden = hidden;
        let payload = ReplyModerated {
            thread: Some(current.thread.clone()),
            reply: Some(reply.clone()),
            action: request.action.clone(),
        }
        .encode_to_vec();
        self.record(
            "ReplyModerated",
            payload,
            &current.thread,
            ExpectedVersion::Exact(current.version),
            &caller,
        )
        .await?;
        Ok(to_reply(&reply, &standing))
    }

    pub async fn report(
        &self,
        request: &ReportRequest,
        caller: Caller,
        token: &str,
    ) -> Result<ReportResponse, ContentError> {
        check_text("reason", &request.reason, REASON_MAX_CHARS).map_err(ContentError::Invalid)?;
        let (current, _) = self.open_thread(&request.thread_id, Some(token)).await?;
        if !request.reply_id.is_empty()
            && !current
                .replies
                .iter()
                .any(|reply| reply.reply_id == request.reply_id)
        {
            return Err(ContentError::NotFound(format!(
                "reply_id: no reply {} in this thread",
                request.reply_id
            )));
        }
        let report_id = Uuid::now_v7().to_string();
        let payload = DiscussionReported {
            thread: Some(current.thread.clone()),
            reply_id: request.reply_id.clone(),
            report_id: report_id.clone(),
            reporter: caller.actor.clone(),
            reason: request.reason.trim().to_owned(),
        }
        .encode_to_vec();
        self.record(
            "DiscussionReported",
            payload,
            &current.thread,
            ExpectedVersion::Any,
            &caller,
        )
        .await?;
        Ok(ReportResponse { report_id })
    }

    pub async fn list_reports(
        &self,
        request: &ListThreadsRequest,
        token: &str,
    ) -> Result<ListReportsResponse, ContentError> {
        let standing = self
            .standing(Some(token), &request.network_slug, &request.site_slug)
            .await?;
        if !standing.moderator() {
            return Err(ContentError::Denied(
                "permission: reports are for moderators".into(),
            ));
        }
        let (network_id, site_id) = place_ids(&standing)?;
        let client = self.pool().await?;
        let rows = client
            .query(
                "SELECT report_id, thread_id, reply_id, reporter, reason, at FROM discussion_reports \
                 WHERE network_id = $1 AND site_id IS NOT DISTINCT FROM $2 ORDER BY at DESC LIMIT 200",
                &[&network_id, &site_id],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        Ok(ListReportsResponse {
            reports: rows
                .iter()
                .map(|row| Report {
                    id: row.get::<_, Uuid>(0).to_string(),
                    thread_id: row.get::<_, Uuid>(1).to_string(),
                    reply_id: row
                        .get::<_, Option<Uuid>>(2)
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    reporter: row.get(3),
                    reason: row.get(4),
                    at: Some(anp_kit::timestamp(row.get(5))),
                })
                .collect(),
        })
    }

    /// A place's threads the caller may read, most recently active first.
    pub async fn list_threads(
        &self,
        request: &ListThreadsRequest,
        token: Option<&str>,
    ) -> Result<ListThreadsResponse, ContentError> {
        let limit = match request.limit {
            0 => 20,
            limit if limit <= 100 => limit,
            _ => return Err(invalid("limit: at most 100")),
        };
        let after = Cursor::decode(&request.cursor)?;
        let standing = self
            .standing(token, &request.network_slug, &request.site_slug)
            .await?;
        let (network_id, site_id) = place_ids(&standing)?;
        let visible: Vec<&str> = if standing.member() {
            vec!["public", "members"]
        } else {
            vec!["public"]
        };
        let (after_at, after_id) = match after {
            Some(cursor) => (cursor.at, cursor.id),
            None => (DateTime::<Utc>::MAX_UTC, Uuid::max()),
        };
        let rows = {
            let client = self.pool().await?;
            client
                .query(
                    "SELECT thread_id, last_activity FROM threads WHERE network_id = $1 \
                     AND site_id IS NOT DISTINCT FROM $2 AND visibility = ANY($3) \
                     AND (NOT hidden OR $4) AND (last_activity, thread_id) < ($5, $6) \
                     ORDER BY last_activity DESC, thread_id DESC LIMIT $7",
                    &[
                        &network_id,
                        &site_id,
                        &visible,
                        &standing.moderator(),
                        &after_at,
                        &after_id,
                        &(i64::from(limit) + 1),
                    ],
                )
                .await
                .map_err(anp_eventstore::StoreError::from)?
        };
        let mut threads = Vec::new();
        let mut next_cursor = String::new();
        for (index, row) in rows.iter().enumerate().take(limit as usize) {
            let thread_id: Uuid = row.get(0);
            threads.push(to_thread(&self.load_thread(thread_id).await?));
            if index + 1 == limit as usize && rows.len() > limit as usize {
                next_cursor = Cursor {
                    at: row.get(1),
                    id: thread_id,
                }
                .encode();
            }
        }
        Ok(ListThreadsResponse {
            threads,
            next_cursor,
        })
    }

    /// A thread and a page of its replies, as the caller may see them.
    pub async fn get_thread(
        &self,
        request: &GetThreadRequest,
        token: Option<&str>,
    ) -> Result<ThreadWithReplies, ContentError> {
        let limit = match request.limit {
            0 => 50,
            limit if limit <= 200 => limit as usize,
            _ => return Err(invalid("limit: at most 200")),
        };
        let after = if request.cursor.is_empty() {
            None
        } else {
            Some(parse_id("cursor", &request.cursor)?)
        };
        let (current, standing) = self.open_thread(&request.thread_id, token).await?;
        let start = match after {
            None => 0,
            Some(after) => current
                .replies
                .iter()
                .position(|reply| reply.reply_id == after.to_string())
                .map(|at| at + 1)
                .ok_or_else(|| invalid("cursor: not a reply of this thread"))?,
        };
        let page: Vec<ThreadReply> = current
            .replies
            .iter()
            .skip(start)
            .take(limit)
            .map(|reply| to_reply(reply, &standing))
            .collect();
        let next_cursor = if start + page.len() < current.replies.len() {
            page.last()
                .map(|reply| reply.id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ThreadWithReplies {
            thread: Some(to_thread(&current)),
            replies: page,
            next_cursor,
        })
    }
}

fn place_ids(standing: &Standing) -> Result<(Uuid, Option<Uuid>), ContentError> {
    let bad = || ContentError::Sites(tonic::Status::internal("bad id"));
    let network_id: Uuid = standing
        .access
        .network
        .clone()
        .unwrap_or_default()
        .id
        .parse()
        .map_err(|_| bad())?;
    let site_id = match (&standing.access.site, standing.board) {
        (Some(site), false) => Some(site.id.parse().map_err(|_| bad())?),
        _ => None,
    };
    Ok((network_id, site_id))
}
