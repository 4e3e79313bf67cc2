//! tonic adapters for [`crate::Sites`].

use std::future::Future;

use anp_kit::{ServiceError, traceparent};
use anp_proto::ops::v1 as ops;
use anp_proto::ops::v1::ops_service_server::{OpsService, OpsServiceServer};
use anp_proto::sites::v1::sites_service_server::{SitesService, SitesServiceServer};
use anp_proto::sites::v1::*;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::accounts::{Grant, Principal};
use crate::{Sites, SitesError};

/// Largest request accepted on the wire; fields have their own, smaller limits.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub fn routes(sites: Sites) -> Routes {
    let api = Api { sites };
    Routes::new(OpsServiceServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(SitesServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES))
}

#[derive(Clone)]
struct Api {
    sites: Sites,
}

fn status(err: SitesError) -> Status {
    err.to_status()
}

fn grant(grant: Grant) -> SessionGrant {
    SessionGrant {
        token: grant.token,
        expires_at: Some(anp_kit::timestamp(grant.expires_at)),
        account: Some(grant.account),
    }
}

/// The client address sign-in limits count against: the gateway passes the
/// browser's in `x-anp-client-ip`; otherwise the peer's address.
fn client_address<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("x-anp-client-ip")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(64).collect())
        .or_else(|| request.remote_addr().map(|addr| addr.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

impl Api {
    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        self.sites
            .authenticate(anp_session::bearer(request))
            .await
            .map_err(status)
    }

    /// Runs one ops call: authenticates the token, checks its scope, runs
    /// `call`, and writes the outcome to the audit log either way.
    async fn ops<T, R, F, Fut>(
        &self,
        request: Request<T>,
        action: &str,
        scope: &str,
        network_slug: impl FnOnce(&T) -> String,
        call: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(T, String, Option<String>) -> Fut,
        Fut: Future<Output = Result<(R, String), SitesError>>,
    {
        let trace = traceparent(&request);
        let slug = network_slug(request.get_ref());
        let (name, outcome) = match self.sites.operator(anp_session::bearer(&request)).await {
            Err(err) => ("unauthenticated".to_owned(), Err(err)),
            Ok(operator) => match operator.require(scope) {
                Err(err) => (operator.token_name, Err(err)),
                Ok(()) => {
                    let actor = format!("operator:{}", operator.token_name);
                    let result = call(request.into_inner(), actor, trace).await;
                    (operator.token_name, result)
                }
            },
        };
        match outcome {
            Ok((response, detail)) => {
                self.sites.audit(&name, action, &slug, "ok", &detail).await;
                Ok(Response::new(response))
            }
            Err(err) => {
                let status = status(err);
                let code = format!("{:?}", status.code());
                self.sites
                    .audit(&name, action, &slug, &code, status.message())
                    .await;
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl OpsService for Api {
    async fn onboard_network(
        &self,
        request: Request<ops::OnboardNetworkRequest>,
    ) -> Result<Response<ops::OnboardNetworkResponse>, Status> {
        self.ops(
            request,
            "OnboardNetwork",
            "networks:write",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                let response = self.sites.onboard_network(&body, &actor, trace).await?;
                let detail = format!(
                    "created={} plan={}",
                    response.created,
                    response.details.as_ref().map_or("", |d| d.plan.as_str())
                );
                Ok((response, detail))
            },
        )
        .await
    }

    async fn list_networks(
        &self,
        request: Request<ops::ListNetworksRequest>,
    ) -> Result<Response<ops::ListNetworksResponse>, Status> {
        self.ops(
            request,
            "ListNetworks",
            "networks:read",
            |_| String::new(),
            |_, _, _| async move {
                let networks = self.sites.list_network_details().await?;
                let detail = format!("{} networks", networks.len());
                Ok((ops::ListNetworksResponse { networks }, detail))
            },
        )
        .await
    }

    async fn get_network(
        &self,
        request: Request<ops::GetNetworkRequest>,
    ) -> Result<Response<ops::NetworkDetails>, Status> {
        self.ops(
            request,
            "GetNetwork",
            "networks:read",
            |r| r.slug.clone(),
            |body, _, _| async move {
                Ok((self.sites.network_details(&body.slug).await?, String::new()))
            },
        )
        .await
    }

    async fn change_plan(
        &self,
        request: Request<ops::ChangePlanRequest>,
    ) -> Result<Response<ops::NetworkDetails>, Status> {
        self.ops(
            request,
            "ChangePlan",
            "networks:write",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                let details = self
                    .sites
                    .change_plan(&body.slug, &body.plan, body.quotas.as_ref(), &actor, trace)
                    .await?;
                let quotas = details.quotas.unwrap_or_default();
                let detail = format!(
                    "plan={} sites={} members={} storage_bytes={}",
                    details.plan,
                    quotas.sites.unwrap_or_default(),
                    quotas.members.unwrap_or_default(),
                    quotas.storage_bytes.unwrap_or_default()
                );
                Ok((details, detail))
            },
        )
        .await
    }

    type ExportNetworkStream =
        tokio_stream::wrappers::ReceiverStream<Result<ops::ArchiveItem, Status>>;

    async fn export_network(
        &self,
        request: Request<ops::ExportNetworkRequest>,
    ) -> Result<Response<Self::ExportNetworkStream>, Status> {
        self.ops(
            request,
            "ExportNetwork",
            "networks:export",
            |r| r.slug.clone(),
            |body, actor, _trace| async move {
                let stream = self.sites.export_network(&body.slug, &actor).await?;
                Ok((stream, "export started".to_owned()))
            },
        )
        .await
    }

    async fn import_network(
        &self,
        request: Request<tonic::Streaming<ops::ArchiveItem>>,
    ) -> Result<Response<ops::ImportNetworkResponse>, Status> {
        self.ops(
            request,
            "ImportNetwork",
            "networks:export",
            |_| String::new(),
            |items, actor, _trace| async move { self.sites.import_network(items, &actor).await },
        )
        .await
    }

    async fn offboard_network(
        &self,
        request: Request<ops::OffboardNetworkRequest>,
    ) -> Result<Response<ops::OffboardNetworkResponse>, Status> {
        self.ops(
            request,
            "OffboardNetwork",
            "networks:offboard",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                self.sites.offboard_network(&body, &actor, trace).await
            },
        )
        .await
    }

    async fn suspend_network(
        &self,
        request: Request<ops::SuspendNetworkRequest>,
    ) -> Result<Response<ops::NetworkDetails>, Status> {
        self.ops(
            request,
            "SuspendNetwork",
            "networks:suspend",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                let details = self
                    .sites
                    .suspend_network(&body.slug, &body.notice, &actor, trace)
                    .await?;
                Ok((details, String::new()))
            },
        )
        .await
    }

    async fn resume_network(
        &self,
        request: Request<ops::ResumeNetworkRequest>,
    ) -> Result<Response<ops::NetworkDetails>, Status> {
        self.ops(
            request,
            "ResumeNetwork",
            "networks:suspend",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                Ok((
                    self.sites.resume_network(&body.slug, &actor, trace).await?,
                    String::new(),
                ))
            },
        )
        .await
    }

    async fn invite_admin(
        &self,
        request: Request<ops::InviteAdminRequest>,
    ) -> Result<Response<Invitation>, Status> {
        self.ops(
            request,
            "InviteAdmin",
            "networks:write",
            |r| r.slug.clone(),
            |body, actor, trace| async move {
                let invitation = self
                    .sites
                    .invite_admin(&body.slug, &body.email, body.ttl_hours, &actor, trace)
                    .await?;
                let detail = format!("invitation={}", invitation.id);
                Ok((invitation, detail))
            },
        )
        .await
    }

    async fn create_token(
        &self,
        request: Request<ops::CreateTokenRequest>,
    ) -> Result<Response<ops::CreateTokenResponse>, Status> {
        self.ops(
            request,
            "CreateToken",
            "tokens:admin",
            |_| String::new(),
            |body, _, _| async move {
                let (token, info) = self.sites.create_token(&body.name, &body.scopes).await?;
                let detail = format!("name={} scopes={}", info.name, info.scopes.join(","));
                Ok((
                    ops::CreateTokenResponse {
                        token,
                        info: Some(info),
                    },
                    detail,
                ))
            },
        )
        .await
    }

    async fn list_tokens(
        &self,
        request: Request<ops::ListTokensRequest>,
    ) -> Result<Response<ops::ListTokensResponse>, Status> {
        self.ops(
            request,
            "ListTokens",
            "tokens:admin",
            |_| String::new(),
            |_, _, _| async move {
                let tokens = self.sites.list_tokens().await?;
                Ok((ops::ListTokensResponse { tokens }, String::new()))
            },
        )
        .await
    }

    async fn revoke_token(
        &self,
        request: Request<ops::RevokeTokenRequest>,
    ) -> Result<Response<ops::TokenInfo>, Status> {
        self.ops(
            request,
            "RevokeToken",
            "tokens:admin",
            |_| String::new(),
            |body, _, _| async move {
                let info = self.sites.revoke_token(&body.id).await?;
                let detail = format!("name={}", info.name);
                Ok((info, detail))
            },
        )
        .await
    }

    async fn list_audit(
        &self,
        request: Request<ops::ListAuditRequest>,
    ) -> Result<Response<ops::ListAuditResponse>, Status> {
        self.ops(
            request,
            "ListAudit",
            "audit:read",
            |r| r.network_slug.clone(),
            |body, _, _| async move {
                let entries = self
                    .sites
                    .list_audit(&body.network_slug, body.before_id, body.limit)
                    .await?;
                Ok((ops::ListAuditResponse { entries }, String::new()))
            },
        )
        .await
    }

    async fn get_usage(
        &self,
        request: Request<ops::GetUsageRequest>,
    ) -> Result<Response<ops::UsageReport>, Status> {
        self.ops(
            request,
            "GetUsage",
            "usage:read",
            |r| r.network_slug.clone(),
            |body, _, _| async move {
                let report = self
                    .sites
                    .usage_report(&body.month, &body.network_slug)
                    .await?;
                let detail = format!("month={}", body.month);
                Ok((report, detail))
            },
        )
        .await
    }

    async fn reindex(
        &self,
        request: Request<anp_proto::aggregator::v1::ReindexRequest>,
    ) -> Result<Response<anp_proto::aggregator::v1::ReindexResponse>, Status> {
        // On its own task, as the aggregator's rebuild: an operator whose
        // call goes away (a deadline, a dropped connection) still gets the
        // rebuild and its line in the audit log.
        let api = self.clone();
        let call = tokio::spawn(async move {
            let sites = &api.sites;
            api.ops(
                request,
                "Reindex",
                "projections:rebuild",
                |_| String::new(),
                |body, actor, _| async move {
                    let report = sites.reindex(&body.scope, &actor).await?;
                    let detail = format!(
                        "scope={} events={} seconds={:.1}",
                        if body.scope.is_empty() {
                            "all"
                        } else {
                            &body.scope
                        },
                        report.events,
                        report.seconds
                    );
                    Ok((report, detail))
                },
            )
            .await
        });
        call.await
            .map_err(|err| Status::internal(format!("reindex: {err}")))?
    }

    async fn cost_share(
        &self,
        request: Request<ops::CostShareRequest>,
    ) -> Result<Response<ops::CostShareResponse>, Status> {
        self.ops(
            request,
            "CostShare",
            "usage:read",
            |_| String::new(),
            |body, _, _| async move {
                let shares = self
                    .sites
                    .cost_share(&body.month, &body.total, body.base_percent)
                    .await?;
                let detail = format!(
                    "month={} total={} base_percent={}",
                    body.month, shares.total, shares.base_percent
                );
                Ok((shares, detail))
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl SitesService for Api {
    async fn sign_up(
        &self,
        request: Request<SignUpRequest>,
    ) -> Result<Response<SessionGrant>, Status> {
        let trace = traceparent(&request);
        let body = request.into_inner();
        let granted = self
            .sites
            .sign_up(&body.email, &body.password, &body.display_name, trace)
            .await
            .map_err(status)?;
        Ok(Response::new(grant(granted)))
    }

    async fn sign_in(
        &self,
        request: Request<SignInRequest>,
    ) -> Result<Response<SessionGrant>, Status> {
        let peer = client_address(&request);
        let body = request.into_inner();
        let granted = self
            .sites
            .sign_in(&body.email, &body.password, &peer)
            .await
            .map_err(status)?;
        Ok(Response::new(grant(granted)))
    }

    async fn sign_out(
        &self,
        request: Request<SignOutRequest>,
    ) -> Result<Response<SignOutResponse>, Status> {
        let principal = self.principal(&request).await?;
        self.sites.sign_out(principal).await.map_err(status)?;
        Ok(Response::new(SignOutResponse {}))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.sites.who_am_i(principal).await.map_err(status)?,
        ))
    }

    async fn create_site(
        &self,
        request: Request<CreateSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .create_site(principal, request.get_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn update_site(
        &self,
        request: Request<UpdateSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .update_site(principal, request.get_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn rename_site(
        &self,
        request: Request<RenameSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .rename_site(principal, request.get_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn move_site(&self, request: Request<MoveSiteRequest>) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .move_site(principal, request.get_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn archive_site(
        &self,
        request: Request<ArchiveSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .archive_site(principal, request.get_ref().site.as_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn restore_site(
        &self,
        request: Request<RestoreSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let site = self
            .sites
            .restore_site(principal, request.get_ref().site.as_ref(), trace)
            .await
            .map_err(status)?;
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
        .map_err(status)?;
        Ok(Response::new(site))
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        let body = request.into_inner();
        let sites = self
            .sites
            .list_sites(&body.network_slug, body.include_archived)
            .await
            .map_err(status)?;
        Ok(Response::new(ListSitesResponse { sites }))
    }

    async fn get_network(
        &self,
        request: Request<GetNetworkRequest>,
    ) -> Result<Response<Network>, Status> {
        let network = self
            .sites
            .get_network(&request.into_inner().slug)
            .await
            .map_err(status)?;
        Ok(Response::new(network))
    }

    async fn list_networks(
        &self,
        _request: Request<ListNetworksRequest>,
    ) -> Result<Response<ListNetworksResponse>, Status> {
        let networks = self.sites.list_networks().await.map_err(status)?;
        Ok(Response::new(ListNetworksResponse { networks }))
    }

    async fn directory(
        &self,
        request: Request<DirectoryRequest>,
    ) -> Result<Response<DirectoryResponse>, Status> {
        let directory = self
            .sites
            .directory(request.get_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(directory))
    }

    async fn invite(
        &self,
        request: Request<InviteRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let invitation = self
            .sites
            .invite(
                principal,
                body.scope.as_ref(),
                body.role,
                body.ttl_hours,
                &body.email,
                trace,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(invitation))
    }

    async fn accept_invitation(
        &self,
        request: Request<AcceptInvitationRequest>,
    ) -> Result<Response<Membership>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let membership = self
            .sites
            .accept_invitation(principal, &request.get_ref().token, trace)
            .await
            .map_err(status)?;
        Ok(Response::new(membership))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let joined = self
            .sites
            .join(principal, body.scope.as_ref(), &body.message, trace)
            .await
            .map_err(status)?;
        Ok(Response::new(joined))
    }

    async fn list_join_requests(
        &self,
        request: Request<ListJoinRequestsRequest>,
    ) -> Result<Response<ListJoinRequestsResponse>, Status> {
        let principal = self.principal(&request).await?;
        let requests = self
            .sites
            .list_join_requests(principal, request.get_ref().scope.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(ListJoinRequestsResponse { requests }))
    }

    async fn decide_join_request(
        &self,
        request: Request<DecideJoinRequestRequest>,
    ) -> Result<Response<JoinRequestInfo>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let decided = self
            .sites
            .decide_join_request(principal, &body.request_id, body.approve, trace)
            .await
            .map_err(status)?;
        Ok(Response::new(decided))
    }

    async fn leave(
        &self,
        request: Request<LeaveRequest>,
    ) -> Result<Response<LeaveResponse>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        self.sites
            .leave(principal, request.get_ref().scope.as_ref(), trace)
            .await
            .map_err(status)?;
        Ok(Response::new(LeaveResponse {}))
    }

    async fn remove_member(
        &self,
        request: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        self.sites
            .remove_member(principal, body.scope.as_ref(), &body.account_id, trace)
            .await
            .map_err(status)?;
        Ok(Response::new(RemoveMemberResponse {}))
    }

    async fn set_role(
        &self,
        request: Request<SetRoleRequest>,
    ) -> Result<Response<Membership>, Status> {
        let principal = self.principal(&request).await?;
        let trace = traceparent(&request);
        let body = request.into_inner();
        let membership = self
            .sites
            .set_role(
                principal,
                body.scope.as_ref(),
                &body.account_id,
                body.role,
                trace,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(membership))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let principal = self.principal(&request).await?;
        let members = self
            .sites
            .list_members(principal, request.get_ref().scope.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(ListMembersResponse { members }))
    }

    async fn get_access(
        &self,
        request: Request<GetAccessRequest>,
    ) -> Result<Response<Access>, Status> {
        let access = self
            .sites
            .access(
                anp_session::bearer(&request),
                request.get_ref().scope.as_ref(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(access))
    }
}
