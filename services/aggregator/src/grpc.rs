//! tonic adapter for the read model.

use anp_kit::{ServiceError, check_slug};
use anp_proto::aggregator::v1::aggregator_service_server::{
    AggregatorService, AggregatorServiceServer,
};
use anp_proto::aggregator::v1::{
    GetFeedRequest, GetFeedResponse, RecordRequestsRequest, RecordRequestsResponse, SearchRequest,
    SearchResponse, UsageDaysRequest, UsageDaysResponse,
};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::feeds::{Cursor, Scope};
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
    check_limit(request.limit)
}

#[tonic::async_trait]
impl AggregatorService for Api {
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
        let body = request.into_inner();
        let limit = check_search(&body).map_err(|err| err.to_status())?;
        if body.query.trim().is_empty() {
            return Ok(Response::new(SearchResponse::default()));
        }
        let index = self.read_model.index.clone();
        let network = (!body.network_slug.is_empty()).then_some(body.network_slug);
        let (hits, total) = tokio::task::spawn_blocking(move || {
            index.search(&body.query, network.as_deref(), limit as usize)
        })
        .await
        .map_err(|err| Status::internal(err.to_string()))?
        .map_err(|err| err.to_status())?;
        Ok(Response::new(SearchResponse { hits, total }))
    }

    async fn get_feed(
        &self,
        request: Request<GetFeedRequest>,
    ) -> Result<Response<GetFeedResponse>, Status> {
        let body = request.into_inner();
        let limit = check_limit(body.limit).map_err(|err| err.to_status())?;
        let scope_request = body.scope.unwrap_or_default();
        let scope = if !scope_request.site_id.is_empty() {
            let site_id = scope_request.site_id.parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "scope.site_id: {:?} is not a UUID",
                    scope_request.site_id
                ))
            })?;
            Scope::Site(site_id)
        } else {
            match (
                scope_request.network_slug.as_str(),
                scope_request.site_slug.as_str(),
            ) {
                ("", "") => Scope::Umbrella,
                ("", _) => {
                    return Err(Status::invalid_argument(
                        "scope.network_slug: required when scope.site_slug is given",
                    ));
                }
                (network, "") => {
                    check_slug("scope.network_slug", network).map_err(Status::invalid_argument)?;
                    Scope::Network(network.to_owned())
                }
                (network, site) => {
                    check_slug("scope.network_slug", network).map_err(Status::invalid_argument)?;
                    check_slug("scope.site_slug", site).map_err(Status::invalid_argument)?;
                    match self
                        .read_model
                        .feeds
                        .site_id(network, site)
                        .await
                        .map_err(|err| err.to_status())?
                    {
                        Some(site_id) => Scope::Site(site_id),
                        None => {
                            return Ok(Response::new(GetFeedResponse::default()));
                        }
                    }
                }
            }
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
