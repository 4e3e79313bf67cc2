//! tonic adapter for the read model.

use anp_kit::{ServiceError, check_slug};
use anp_proto::aggregator::v1::aggregator_service_server::{
    AggregatorService, AggregatorServiceServer,
};
use anp_proto::aggregator::v1::{
    FeedScope, GetFeedRequest, GetFeedResponse, ProjectionStatusRequest, ProjectionStatusResponse,
    RecordRequestsRequest, RecordRequestsResponse, ReindexRequest, ReindexResponse, SearchRequest,
    SearchResponse, UpcomingRequest, UpcomingResponse, UsageDaysRequest, UsageDaysResponse,
};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::feeds::{Cursor, Scope};
use crate::search::SearchFilters;
use crate::upcoming::{HORIZON_DAYS, UpcomingCursor};
use crate::{AggregatorError, ReadModel};

pub const QUERY_MAX_CHARS: usize = 512;
pub const LIMIT_MAX: u32 = 100;
const LIMIT_DEFAULT: u32 = 20;

pub fn routes(read_model: ReadModel) -> Routes {
    Routes::new(AggregatorServiceServer::new(Api { read_model }))
}

#[derive(Clone)]
struct Api {
    read_model: ReadModel,
}

fn check_limit(limit: u32) -> Result<u32, AggregatorError> {
    match limit {
        0 => Ok(LIMIT_DEFAULT),
        1..=LIMIT_MAX => Ok(limit),
        _ => Err(AggregatorError::Invalid(format!(
            "limit: {limit} is over the maximum of {LIMIT_MAX}"
        ))),
    }
}

/// A tag: 1-40 lowercase letters, digits and hyphens.
fn check_tag(field: &str, tag: &str) -> Result<(), String> {
    if tag.is_empty()
        || tag.chars().count() > 40
        || !tag
            .chars()
            .all(|c| c.is_alphanumeric() && !c.is_uppercase() || c == '-')
    {
        return Err(format!(
            "{field}: {tag:?} is not a tag (1-40 lowercase letters, digits, hyphens)"
        ));
    }
    Ok(())
}

/// Validates a search request; the error names the field.
pub fn check_search(request: &SearchRequest) -> Result<u32, AggregatorError> {
    let count = request.query.chars().count();
    if count > QUERY_MAX_CHARS {
        return Err(AggregatorError::Invalid(format!(
            "query: {count} characters, at most {QUERY_MAX_CHARS} allowed"
        )));
    }
    if request.query.chars().any(char::is_control) {
        return Err(AggregatorError::Invalid(
            "query: must not contain control characters".into(),
        ));
    }
    if !request.network_slug.is_empty() {
        check_slug("network_slug", &request.network_slug).map_err(AggregatorError::Invalid)?;
    }
    if !matches!(
        request.kind.as_str(),
        "" | "post" | "page" | "thread" | "site" | "event"
    ) {
        return Err(AggregatorError::Invalid(format!(
            "kind: {:?} is not post, page, thread, site or event",
            request.kind
        )));
    }
    if !request.site_slug.is_empty() {
        if request.network_slug.is_empty() {
            return Err(AggregatorError::Invalid(
                "network_slug: required when site_slug is given".into(),
            ));
        }
        check_slug("site_slug", &request.site_slug).map_err(AggregatorError::Invalid)?;
    }
    if !request.tag.is_empty() {
        check_tag("tag", &request.tag).map_err(AggregatorError::Invalid)?;
    }
    if !request.lang.is_empty() {
        anp_kit::check_language("lang", &request.lang).map_err(AggregatorError::Invalid)?;
    }
    if request.cursor.len() > 200 {
        return Err(AggregatorError::Invalid(
            "cursor: not a cursor of this search".into(),
        ));
    }
    if !matches!(request.sort.as_str(), "" | "relevance" | "date") {
        return Err(AggregatorError::Invalid(format!(
            "sort: {:?} is not relevance or date",
            request.sort
        )));
    }
    if let (Some(from), Some(to)) = (&request.from, &request.to)
        && anp_kit::from_timestamp(Some(to)) <= anp_kit::from_timestamp(Some(from))
    {
        return Err(AggregatorError::Invalid("to: must be after from".into()));
    }
    check_limit(request.limit)
}

impl Api {
    /// The timeline a request names; `None`: a site with nothing projected
    /// yet (its timelines are empty).
    async fn resolve(&self, scope_request: FeedScope) -> Result<Option<Scope>, Status> {
        let others_empty = scope_request.network_slug.is_empty()
            && scope_request.site_slug.is_empty()
            && scope_request.site_id.is_empty();
        if !scope_request.tag.is_empty() {
            if !others_empty || !scope_request.lang.is_empty() {
                return Err(Status::invalid_argument(
                    "scope.tag: a tag's timeline spans every network; give it alone",
                ));
            }
            check_tag("scope.tag", &scope_request.tag).map_err(Status::invalid_argument)?;
            return Ok(Some(Scope::Tag(scope_request.tag.clone())));
        }
        if !scope_request.lang.is_empty() {
            if !others_empty {
                return Err(Status::invalid_argument(
                    "scope.lang: a language's timeline spans every network; give it alone",
                ));
            }
            anp_kit::check_language("scope.lang", &scope_request.lang)
                .map_err(Status::invalid_argument)?;
            return Ok(Some(Scope::Lang(scope_request.lang.clone())));
        }
        if !scope_request.site_id.is_empty() {
            let site_id = scope_request.site_id.parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "scope.site_id: {:?} is not a UUID",
                    scope_request.site_id
                ))
            })?;
            return Ok(Some(Scope::Site(site_id)));
        }
        match (
            scope_request.network_slug.as_str(),
            scope_request.site_slug.as_str(),
        ) {
            ("", "") => Ok(Some(Scope::Umbrella)),
            ("", _) => Err(Status::invalid_argument(
                "scope.network_slug: required when scope.site_slug is given",
            )),
            (network, "") => {
                check_slug("scope.network_slug", network).map_err(Status::invalid_argument)?;
                Ok(Some(Scope::Network(network.to_owned())))
            }
            (network, site) => {
                check_slug("scope.network_slug", network).map_err(Status::invalid_argument)?;
                check_slug("scope.site_slug", site).map_err(Status::invalid_argument)?;
                Ok(self
                    .read_model
                    .feeds
                    .site_id(network, site)
                    .await
                    .map_err(|err| err.to_status())?
                    .map(Scope::Site))
            }
        }
    }
}

#[tonic::async_trait]
impl AggregatorService for Api {
    async fn projection_status(
        &self,
        _request: Request<ProjectionStatusRequest>,
    ) -> Result<Response<ProjectionStatusResponse>, Status> {
        self.read_model
            .projection_status()
            .await
            .map(Response::new)
            .map_err(|err| err.to_status())
    }

    async fn upcoming(
        &self,
        request: Request<UpcomingRequest>,
    ) -> Result<Response<UpcomingResponse>, Status> {
        let body = request.into_inner();
        let limit = check_limit(body.limit).map_err(|err| err.to_status())?;
        let from = body.from.map_or_else(chrono::Utc::now, |from| {
            anp_kit::from_timestamp(Some(&from))
        });
        let to = body
            .to
            .map_or(from + chrono::Duration::days(HORIZON_DAYS), |to| {
                anp_kit::from_timestamp(Some(&to))
            });
        if to <= from {
            return Err(Status::invalid_argument("to: must be after from"));
        }
        let cursor = if body.cursor.is_empty() {
            None
        } else {
            Some(UpcomingCursor::decode(&body.cursor).map_err(|err| err.to_status())?)
        };
        let Some(scope) = self.resolve(body.scope.unwrap_or_default()).await? else {
            return Ok(Response::new(UpcomingResponse::default()));
        };
        let (occurrences, next) = self
            .read_model
            .feeds
            .upcoming(&scope, from, to, cursor, limit)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(UpcomingResponse {
            occurrences,
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }

    async fn usage_days(
        &self,
        request: Request<UsageDaysRequest>,
    ) -> Result<Response<UsageDaysResponse>, Status> {
        let body = request.into_inner();
        let day = |field: &str, value: &str| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                AggregatorError::Invalid(format!("{field}: {value:?} is not YYYY-MM-DD"))
                    .to_status()
            })
        };
        let (from, to) = (
            day("from_day", &body.from_day)?,
            day("to_day", &body.to_day)?,
        );
        if to < from || (to - from).num_days() > 366 {
            return Err(AggregatorError::Invalid(
                "to_day: must fall within 366 days on or after from_day".into(),
            )
            .to_status());
        }
        let days = self
            .read_model
            .usage
            .days(from, to)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(UsageDaysResponse { days }))
    }

    async fn record_requests(
        &self,
        request: Request<RecordRequestsRequest>,
    ) -> Result<Response<RecordRequestsResponse>, Status> {
        let body = request.into_inner();
        let recorded = self
            .read_model
            .usage
            .record_requests(&body.batch_id, &body.counts)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(RecordRequestsResponse { recorded }))
    }

    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let token = anp_session::bearer(&request).map(str::to_owned);
        let body = request.into_inner();
        let limit = check_search(&body).map_err(|err| err.to_status())?;
        if body.query.trim().is_empty() {
            return Ok(Response::new(SearchResponse::default()));
        }
        let audiences = self
            .read_model
            .audiences
            .of_caller(token.as_deref())
            .await?;
        let index = self.read_model.index.current();
        let filters = SearchFilters {
            by_date: body.sort == "date",
            site_key: (!body.site_slug.is_empty())
                .then(|| format!("{}/{}", body.network_slug, body.site_slug)),
            network_slug: (!body.network_slug.is_empty()).then_some(body.network_slug),
            kind: (!body.kind.is_empty()).then_some(body.kind),
            tag: (!body.tag.is_empty()).then_some(body.tag),
            lang: (!body.lang.is_empty()).then_some(body.lang),
            from: body.from.map(|from| anp_kit::from_timestamp(Some(&from))),
            to: body.to.map(|to| anp_kit::from_timestamp(Some(&to))),
            facets: body.facets,
            audiences,
        };
        let cursor = Some(body.cursor).filter(|cursor| !cursor.is_empty());
        let page = tokio::task::spawn_blocking(move || {
            index.search(&body.query, &filters, limit as usize, cursor.as_deref())
        })
        .await
        .map_err(|err| Status::internal(err.to_string()))?
        .map_err(|err| err.to_status())?;
        Ok(Response::new(SearchResponse {
            hits: page.hits,
            total: page.total,
            total_is_lower_bound: page.total_is_lower_bound,
            facets: page.facets,
            facets_are_estimates: page.facets_are_estimates,
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn reindex(
        &self,
        request: Request<ReindexRequest>,
    ) -> Result<Response<ReindexResponse>, Status> {
        let Some(grants) = &self.read_model.reindex.grants else {
            return Err(Status::failed_precondition(
                "reindex: ANP_SESSION_PUBLIC_KEY is not set here",
            ));
        };
        let grant = grants.grant_of(&request, "reindex", None)?;
        let scope = crate::reindex::Scope::parse(&request.get_ref().scope)
            .map_err(|err| err.to_status())?;
        tracing::info!(by = %grant.subject, ?scope, "rebuilding projections");
        // The rebuild runs on its own task: a caller that goes away (a
        // deadline, a dropped connection) does not stop it halfway; it
        // finishes, swaps and logs its report.
        let read_model = self.read_model.clone();
        let rebuild = tokio::spawn(async move {
            let sources = read_model.reindex.sources().await?;
            read_model.rebuild(&sources, scope).await
        });
        let report = rebuild
            .await
            .map_err(|err| Status::internal(format!("reindex: {err}")))?
            .map_err(|err| err.to_status())?;
        Ok(Response::new(ReindexResponse {
            events: report.events,
            seconds: report.seconds,
            search_documents: report.search_documents,
        }))
    }

    async fn get_feed(
        &self,
        request: Request<GetFeedRequest>,
    ) -> Result<Response<GetFeedResponse>, Status> {
        let body = request.into_inner();
        let limit = check_limit(body.limit).map_err(|err| err.to_status())?;
        let Some(scope) = self.resolve(body.scope.unwrap_or_default()).await? else {
            return Ok(Response::new(GetFeedResponse::default()));
        };
        let cursor = if body.cursor.is_empty() {
            None
        } else {
            Some(Cursor::decode(&body.cursor).map_err(|err| err.to_status())?)
        };
        let (entries, next) = self
            .read_model
            .feeds
            .page(&scope, cursor, limit)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(GetFeedResponse {
            entries,
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }
}
