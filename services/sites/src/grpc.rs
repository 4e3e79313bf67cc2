//! tonic adapters for [`crate::Sites`].

use anp_kit::{SecretToken, ServiceError, require_bearer, traceparent};
use anp_proto::ops::v1::ops_service_server::{OpsService, OpsServiceServer};
use anp_proto::ops::v1::{
    ListNetworksRequest, ListNetworksResponse, OnboardNetworkRequest, OnboardNetworkResponse,
};
use anp_proto::sites::v1::sites_service_server::{SitesService, SitesServiceServer};
use anp_proto::sites::v1::{
    CreateSiteRequest, GetNetworkRequest, GetSiteRequest, ListSitesRequest, ListSitesResponse,
    Network, Site,
};
use anp_proto::sites::v1::{
    ListNetworksRequest as PublicListNetworksRequest,
    ListNetworksResponse as PublicListNetworksResponse,
};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::Sites;

/// Largest request accepted on the wire; fields have their own, smaller limits.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub fn routes(sites: Sites, ops_token: SecretToken) -> Routes {
    let api = Api { sites, ops_token };
    Routes::new(OpsServiceServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(SitesServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES))
}

#[derive(Clone)]
struct Api {
    sites: Sites,
    ops_token: SecretToken,
}

const OPERATOR: &str = "operator";

#[tonic::async_trait]
impl OpsService for Api {
    async fn onboard_network(
        &self,
        request: Request<OnboardNetworkRequest>,
    ) -> Result<Response<OnboardNetworkResponse>, Status> {
        require_bearer(&request, &self.ops_token)?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let (network, created) = self
            .sites
            .onboard_network(
                &body.slug,
                &body.name,
                &body.idempotency_key,
                OPERATOR,
                trace,
            )
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(OnboardNetworkResponse {
            network: Some(network),
            created,
        }))
    }

    async fn list_networks(
        &self,
        request: Request<ListNetworksRequest>,
    ) -> Result<Response<ListNetworksResponse>, Status> {
        require_bearer(&request, &self.ops_token)?;
        let networks = self
            .sites
            .list_networks()
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(ListNetworksResponse { networks }))
    }
}

#[tonic::async_trait]
impl SitesService for Api {
    async fn create_site(
        &self,
        request: Request<CreateSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        require_bearer(&request, &self.ops_token)?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let site = self
            .sites
            .create_site(&body.network_slug, &body.slug, &body.name, OPERATOR, trace)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(site))
    }

    async fn get_site(&self, request: Request<GetSiteRequest>) -> Result<Response<Site>, Status> {
        let body = request.into_inner();
        let site = if body.site_id.is_empty() {
            self.sites
                .get_site_by_slugs(&body.network_slug, &body.site_slug)
                .await
        } else {
            self.sites.get_site_by_id(&body.site_id).await
        }
        .map_err(|err| err.to_status())?;
        Ok(Response::new(site))
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        let body = request.into_inner();
        let sites = self
            .sites
            .list_sites(&body.network_slug)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(ListSitesResponse { sites }))
    }

    async fn list_networks(
        &self,
        _request: Request<PublicListNetworksRequest>,
    ) -> Result<Response<PublicListNetworksResponse>, Status> {
        let networks = self
            .sites
            .list_networks()
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(PublicListNetworksResponse { networks }))
    }

    async fn get_network(
        &self,
        request: Request<GetNetworkRequest>,
    ) -> Result<Response<Network>, Status> {
        let network = self
            .sites
            .get_network(&request.into_inner().slug)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(network))
    }
}
