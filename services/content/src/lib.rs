//! The content service: posts, event-sourced. Markdown bodies are rendered
//! to HTML and sanitized before anything is stored.

pub mod grpc;
pub mod render;

use anp_bus::{BusConfig, Relay};
use anp_eventstore::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use anp_kit::{Caller, ErrorKind, ServiceError, Shutdown, check_slug, check_text};
use anp_proto::content::v1::{EditPostRequest, Post, PublishPostRequest};
use anp_proto::events::v1::{PostEdited, PostPublished, PostState};
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::{Access, GetAccessRequest, NetworkStatus, Role, Scope};
use prost::Message;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tracing::info;
use uuid::Uuid;

pub const SERVICE: &str = "content";
pub const TITLE_MAX_CHARS: usize = 200;
pub const BODY_MAX_BYTES: usize = 256 * 1024;
pub const LANGUAGES: &[&str] = &["en", "es"];

/// Errors of the content service.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("post {post_id} is at version {actual}, not the expected {expected}")]
    VersionMismatch {
        post_id: String,
        expected: u64,
        actual: u64,
    },
    #[error("sites service: {0}")]
    Sites(tonic::Status),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt event {event_id}: {message}")]
    Corrupt { event_id: Uuid, message: String },
}

impl ServiceError for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Invalid(_) => ErrorKind::InvalidArgument,
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::VersionMismatch { .. } => ErrorKind::Conflict,
            ContentError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            ContentError::Denied(_) => ErrorKind::PermissionDenied,
            ContentError::Precondition(_) => ErrorKind::FailedPrecondition,
            ContentError::Sites(status) => match ErrorKind::from_grpc(status.code()) {
                kind @ (ErrorKind::NotFound
                | ErrorKind::InvalidArgument
                | ErrorKind::Unauthenticated
                | ErrorKind::PermissionDenied) => kind,
                _ => ErrorKind::Unavailable,
            },
            ContentError::Store(_) | ContentError::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    fn to_status(&self) -> tonic::Status {
        match self {
            // Pass the sites service's own message on (it names the field).
            ContentError::Sites(status) => {
                tonic::Status::new(self.kind().grpc_code(), status.message().to_owned())
            }
            other => {
                let kind = other.kind();
                if kind == ErrorKind::Internal {
                    tracing::error!(error = %other, "internal error");
                    return tonic::Status::internal("internal error");
                }
                tonic::Status::new(kind.grpc_code(), other.to_string())
            }
        }
    }
}

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: anp_kit::DatabaseConfig,
    pub bus: BusConfig,
    /// Verifies the session tokens the sites service signs.
    pub sessions: anp_session::Verifier,
    pub sites_url: String,
    pub embedded_relay: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let public_key = std::env::var("ANP_SESSION_PUBLIC_KEY")
            .map_err(|_| anyhow::anyhow!("ANP_SESSION_PUBLIC_KEY must be set"))?;
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_CONTENT_SCHEMA", "content")?,
            bus: BusConfig::from_env(),
            sessions: anp_session::Verifier::from_public_key(&public_key)?,
            sites_url: anp_kit::env_or("ANP_SITES_URL", "http://127.0.0.1:50051"),
            embedded_relay: anp_kit::env_or("ANP_EMBEDDED_RELAY", "true") == "true",
        })
    }
}

/// Starts the service on `listener` and runs until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let pool = anp_eventstore::connect_pool(
        &config.database.url,
        &config.database.schema,
        config.database.pool_size,
    )
    .await?;
    let store = EventStore::from_pool(pool).await?;
    let relay_task = if config.embedded_relay {
        let jetstream = anp_bus::connect(&config.bus).await?;
        anp_bus::ensure_stream(&jetstream, &config.bus).await?;
        let relay = Relay::new(SERVICE, store.clone(), jetstream, config.bus.clone());
        Some(tokio::spawn(relay.run(shutdown.clone())))
    } else {
        None
    };
    let sites =
        SitesServiceClient::new(Channel::from_shared(config.sites_url.clone())?.connect_lazy());
    let archive = anp_archive::service::ArchiveService::new(
        SERVICE,
        store.clone(),
        config.sessions.clone(),
        anp_bus::relay_checkpoint(&config.bus),
    );
    let content = Content { store, sites };
    info!("content service ready");
    anp_kit::serve_grpc(
        listener,
        grpc::routes(content, config.sessions.clone()).add_service(archive.into_server()),
        &[
            "anp.content.v1.ContentService",
            "anp.archive.v1.NetworkArchive",
        ],
        shutdown,
    )
    .await?;
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    Ok(())
}

/// The domain logic of posts.
#[derive(Clone)]
pub struct Content {
    store: EventStore,
    sites: SitesServiceClient<Channel>,
}

/// A post as folded from its events.
#[derive(Debug, Clone)]
struct PostAggregate {
    state: PostState,
    version: u64,
}

fn check_post_fields(title: &str, body: &str, lang: &str) -> Result<(), ContentError> {
    check_text("title", title, TITLE_MAX_CHARS).map_err(ContentError::Invalid)?;
    if body.len() > BODY_MAX_BYTES {
        return Err(ContentError::Invalid(format!(
            "body_markdown: {} bytes, at most {BODY_MAX_BYTES} allowed",
            body.len()
        )));
    }
    if body.contains('\0') {
        return Err(ContentError::Invalid(
            "body_markdown: must not contain NUL characters".into(),
        ));
    }
    if !LANGUAGES.contains(&lang) {
        return Err(ContentError::Invalid(format!(
            "lang: {lang:?} is not supported (use one of: {})",
            LANGUAGES.join(", ")
        )));
    }
    Ok(())
}

fn parse_post_id(post_id: &str) -> Result<Uuid, ContentError> {
    post_id
        .parse()
        .map_err(|_| ContentError::Invalid(format!("post_id: {post_id:?} is not a UUID")))
}

fn stream_id(post_id: Uuid) -> String {
    format!("post-{post_id}")
}

fn fold(events: &[RecordedEvent]) -> Result<Option<PostAggregate>, ContentError> {
    let mut aggregate: Option<PostAggregate> = None;
    for event in events {
        let corrupt = |message: String| ContentError::Corrupt {
            event_id: event.event_id,
            message,
        };
        let state = match event.event_type.as_str() {
            "PostPublished" => {
                PostPublished::decode(event.payload.as_slice())
                    .map_err(|err| corrupt(err.to_string()))?
                    .post
            }
            "PostEdited" => {
                PostEdited::decode(event.payload.as_slice())
                    .map_err(|err| corrupt(err.to_string()))?
                    .post
            }
            other => return Err(corrupt(format!("unknown event type {other}"))),
        };
        let state = state.ok_or_else(|| corrupt("missing post".into()))?;
        aggregate = Some(PostAggregate {
            state,
            version: event.version,
        });
    }
    Ok(aggregate)
}

fn to_post(aggregate: &PostAggregate) -> Post {
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
    }
}

impl Content {
    /// What the caller may do in a site, from the sites service (which owns
    /// roles), with the caller's own token: editors and above may write, and
    /// only while the network is active and the site not archived.
    async fn authorize(&self, token: &str, scope: Scope) -> Result<Access, ContentError> {
        let request = anp_session::with_bearer(GetAccessRequest { scope: Some(scope) }, token)
            .map_err(|_| ContentError::Invalid("authorization: malformed token".into()))?;
        let access = self
            .sites
            .clone()
            .get_access(request)
            .await
            .map_err(ContentError::Sites)?
            .into_inner();
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
        } = request;
        let (network_slug, site_slug) = (network_slug.as_str(), site_slug.as_str());
        let actor = caller.actor.as_str();
        let lang = if lang.is_empty() { "en" } else { lang.as_str() };
        check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
        check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
        check_post_fields(title, body_markdown, lang)?;
        let access = self
            .authorize(
                token,
                Scope {
                    network_slug: network_slug.to_owned(),
                    site_slug: site_slug.to_owned(),
                    site_id: String::new(),
                },
            )
            .await?;
        let site = access
            .site
            .ok_or_else(|| ContentError::Sites(tonic::Status::internal("access without site")))?;
        let network_id: Uuid = site
            .network_id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad network id")))?;
        let site_id: Uuid = site
            .id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))?;
        let post_id = Uuid::now_v7();
        let now = anp_kit::timestamp(chrono::Utc::now());
        let state = PostState {
            post_id: post_id.to_string(),
            network_id: site.network_id.clone(),
            network_slug: site.network_slug.clone(),
            site_id: site.id.clone(),
            site_slug: site.slug.clone(),
            site_name: site.name.clone(),
            title: title.trim().to_owned(),
            body_markdown: body_markdown.to_owned(),
            body_html: render::markdown_to_safe_html(body_markdown),
            lang: lang.to_owned(),
            author: actor.to_owned(),
            published_at: Some(now),
            updated_at: Some(now),
        };
        let payload = PostPublished {
            post: Some(state.clone()),
        };
        let event = NewEvent::new("PostPublished", network_id, actor, payload.encode_to_vec())
            .with_site(site_id)
            .with_traceparent(caller.traceparent);
        let recorded = self
            .store
            .append(&stream_id(post_id), ExpectedVersion::NoStream, &[event])
            .await?;
        info!(%post_id, network = network_slug, site = site_slug, "post published");
        Ok(to_post(&PostAggregate {
            state,
            version: recorded.last().map(|event| event.version).unwrap_or(1),
        }))
    }

    pub async fn edit_post(
        &self,
        request: &EditPostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let EditPostRequest {
            post_id,
            expected_version,
            title,
            body_markdown,
            lang,
        } = request;
        let expected_version = *expected_version;
        let actor = caller.actor.as_str();
        let id = parse_post_id(post_id)?;
        let current = self.load(id).await?;
        let access = self
            .authorize(
                token,
                Scope {
                    site_id: current.state.site_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let lang = if lang.is_empty() {
            current.state.lang.as_str()
        } else {
            lang.as_str()
        };
        check_post_fields(title, body_markdown, lang)?;
        if expected_version != 0 && expected_version != current.version {
            return Err(ContentError::VersionMismatch {
                post_id: post_id.to_owned(),
                expected: expected_version,
                actual: current.version,
            });
        }
        let mut state = current.state.clone();
        // The site may have been renamed since: carry its current slug and name.
        if let Some(site) = &access.site {
            state.site_slug = site.slug.clone();
            state.site_name = site.name.clone();
        }
        state.title = title.trim().to_owned();
        state.body_markdown = body_markdown.to_owned();
        state.body_html = render::markdown_to_safe_html(body_markdown);
        state.lang = lang.to_owned();
        state.updated_at = Some(anp_kit::timestamp(chrono::Utc::now()));
        let network_id: Uuid = state
            .network_id
            .parse()
            .map_err(|_| ContentError::Corrupt {
                event_id: Uuid::nil(),
                message: "network id".into(),
            })?;
        let site_id: Uuid = state.site_id.parse().map_err(|_| ContentError::Corrupt {
            event_id: Uuid::nil(),
            message: "site id".into(),
        })?;
        let payload = PostEdited {
            post: Some(state.clone()),
        };
        let event = NewEvent::new("PostEdited", network_id, actor, payload.encode_to_vec())
            .with_site(site_id)
            .with_traceparent(caller.traceparent);
        let recorded = self
            .store
            .append(
                &stream_id(id),
                ExpectedVersion::Exact(current.version),
                &[event],
            )
            .await?;
        info!(%post_id, "post edited");
        Ok(to_post(&PostAggregate {
            state,
            version: recorded
                .last()
                .map(|event| event.version)
                .unwrap_or(current.version + 1),
        }))
    }

    pub async fn get_post(&self, post_id: &str) -> Result<Post, ContentError> {
        let id = parse_post_id(post_id)?;
        Ok(to_post(&self.load(id).await?))
    }

    async fn load(&self, post_id: Uuid) -> Result<PostAggregate, ContentError> {
        let events = self.store.load_stream(&stream_id(post_id)).await?;
        fold(&events)?.ok_or_else(|| ContentError::NotFound(format!("post_id: no post {post_id}")))
    }
}
