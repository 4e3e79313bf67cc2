//! The cooperative's commands: networks, tokens, the audit log, keys.

use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::ops::v1::*;
use anp_proto::sites::v1::Invitation;
use clap::{Args, Subcommand};

use crate::{QuotaArgs, auth, channel, grpc_error, time};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Onboard a network with its first admin; retrying with the same key is safe.
    Onboard {
        slug: String,
        #[arg(long)]
        name: String,
        /// The first network admin; an invitation for this address is printed.
        #[arg(long)]
        admin_email: String,
        /// small, standard or large.
        #[arg(long, default_value = "small")]
        plan: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        #[arg(long, default_value = "")]
        idempotency_key: String,
    },
    /// Every network with its plan, quotas and usage.
    List,
    /// One network with its plan, quotas and usage.
    Show { slug: String },
    /// Change a network's plan or quotas.
    Plan {
        slug: String,
        /// A new plan (its quotas replace the current ones), or keep the plan.
        #[arg(long, default_value = "")]
        plan: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Suspend a network: its pages show the notice, its writes fail.
    Suspend {
        slug: String,
        #[arg(long, default_value = "")]
        notice: String,
    },
    /// Resume a suspended network.
    Resume { slug: String },
    /// Write a network's archive (every event of every service, member
    /// accounts with their keys, a manifest) to a file. It holds personal
    /// data: keep it safe.
    Export {
        slug: String,
        /// The archive to write (a tar; written whole or not at all).
        #[arg(long, short = 'o')]
        output: std::path::PathBuf,
    },
    /// Import an exported network into this installation (safe to run again
    /// after a failure: what is already here is skipped).
    Import { archive: std::path::PathBuf },
    /// Offboard a network: suspend it, export it to --archive, then delete
    /// its data here and forget members who belong to no other network.
    Offboard {
        slug: String,
        #[arg(long)]
        archive: std::path::PathBuf,
        /// Repeat the slug to confirm; nothing can bring the data back but
        /// the archive.
        #[arg(long)]
        confirm: String,
        #[arg(long, default_value = "This network is leaving the installation.")]
        notice: String,
    },
    /// Invite another network admin.
    InviteAdmin {
        slug: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value_t = 0)]
        ttl_hours: u32,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once.
    Create {
        name: String,
        /// networks:read, networks:write, networks:suspend, networks:export,
        /// networks:offboard, audit:read, usage:read, tokens:admin, or *
        /// (repeat the flag for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only this network's entries.
    #[arg(long, default_value = "")]
    network: String,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Entries older than this id (the last id of a previous page).
    #[arg(long, default_value_t = 0)]
    before: i64,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new session signing key and its public key as environment lines.
    Generate,
}

fn quotas(args: &QuotaArgs) -> Option<Quotas> {
    Some(Quotas {
        sites: args.sites,
        members: args.members,
        storage_bytes: args.storage_bytes,
    })
}

pub fn print_invitation(invitation: &Invitation) {
    let scope = if invitation.site_slug.is_empty() {
        invitation.network_slug.clone()
    } else {
        format!("{}/{}", invitation.network_slug, invitation.site_slug)
    };
    println!(
        "invitation {} to {scope} until {}: anpctl member accept {}",
        invitation.id,
        time(invitation.expires_at.as_ref()),
        invitation.token
    );
}

fn print_manifest(manifest: &anp_archive::format::Manifest, path: &std::path::Path) {
    println!(
        "exported {} ({}) to {}",
        manifest.network_slug,
        manifest.network_id,
        path.display()
    );
    for service in &manifest.services {
        println!("  {}: {} events", service.service, service.file.lines);
    }
    println!("  account keys: {}", manifest.account_keys.lines);
}

fn print_details(details: &NetworkDetails) {
    let network = details.network.clone().unwrap_or_default();
    let quotas = details.quotas.unwrap_or_default();
    let usage = details.usage.unwrap_or_default();
    let status = if network.notice.is_empty() {
        "active"
    } else {
        "suspended"
    };
    println!(
        "{}\t{}\t{status}\t{}\tsites {}/{}\tmembers {}/{}\tstorage {}/{}",
        network.slug,
        network.name,
        details.plan,
        usage.sites,
        quotas.sites.unwrap_or_default(),
        usage.members,
        quotas.members.unwrap_or_default(),
        usage.storage_bytes,
        quotas.storage_bytes.unwrap_or_default()
    );
}

pub async fn network(url: &str, command: NetworkCommand) -> anyhow::Result<()> {
    let mut ops = OpsServiceClient::new(channel(url).await?)
        .max_decoding_message_size(16 * 1024 * 1024)
        .max_encoding_message_size(16 * 1024 * 1024);
    match command {
        NetworkCommand::Export { slug, output } => {
            let manifest =
                anp_archive::client::export(&mut ops, &auth::ops_token()?, &slug, &output).await?;
            print_manifest(&manifest, &output);
        }
        NetworkCommand::Import { archive } => {
            let reply =
                anp_archive::client::import(&mut ops, &auth::ops_token()?, &archive).await?;
            let network = reply.network.unwrap_or_default();
            println!(
                "imported {} ({}) {}",
                network.slug, network.name, network.id
            );
            for service in &reply.services {
                println!(
                    "  {}: {} events imported, {} already here",
                    service.service, service.imported, service.skipped
                );
            }
            println!(
                "  accounts: {} imported, {} already here (kept as they are)",
                reply.accounts_imported, reply.accounts_existing
            );
        }
        NetworkCommand::Offboard {
            slug,
            archive,
            confirm,
            notice,
        } => {
            if confirm != slug {
                anyhow::bail!("--confirm must repeat the network's slug {slug:?}");
            }
            let token = auth::ops_token()?;
            // Suspended first, so nothing changes after the export.
            ops.suspend_network(auth::ops(SuspendNetworkRequest {
                slug: slug.clone(),
                notice,
            })?)
            .await
            .map_err(grpc_error)?;
            let manifest = anp_archive::client::export(&mut ops, &token, &slug, &archive).await?;
            print_manifest(&manifest, &archive);
            let reply = ops
                .offboard_network(auth::ops(OffboardNetworkRequest {
                    slug: slug.clone(),
                    confirm_slug: confirm,
                    exported: manifest.to_proto().services,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("offboarded {slug}");
            for service in &reply.deleted {
                println!("  {}: {} events deleted", service.service, service.events);
            }
            println!(
                "  accounts: {} forgotten, {} kept (members of other networks)",
                reply.accounts_forgotten, reply.accounts_kept
            );
        }
        NetworkCommand::Onboard {
            slug,
            name,
            admin_email,
            plan,
            quotas: quota_args,
            idempotency_key,
        } => {
            let response = ops
                .onboard_network(auth::ops(OnboardNetworkRequest {
                    slug,
                    name,
                    idempotency_key,
                    admin_email,
                    plan,
                    quotas: quotas(&quota_args),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            let network = response.network.unwrap_or_default();
            let verb = if response.created {
                "onboarded"
            } else {
                "already onboarded"
            };
            println!("{verb} {} ({}) {}", network.slug, network.name, network.id);
            if let Some(invitation) = &response.admin_invitation {
                print_invitation(invitation);
            }
        }
        NetworkCommand::List => {
            let networks = ops
                .list_networks(auth::ops(ListNetworksRequest {})?)
                .await
                .map_err(grpc_error)?
                .into_inner()
                .networks;
            for details in &networks {
                print_details(details);
            }
        }
        NetworkCommand::Show { slug } => {
            let details = ops
                .get_network(auth::ops(GetNetworkRequest { slug })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_details(&details);
            if let Some(network) = &details.network
                && !network.notice.is_empty()
            {
                println!(
                    "suspended since {}: {}",
                    time(details.suspended_at.as_ref()),
                    network.notice
                );
            }
        }
        NetworkCommand::Plan {
            slug,
            plan,
            quotas: quota_args,
        } => {
            let details = ops
                .change_plan(auth::ops(ChangePlanRequest {
                    slug,
                    plan,
                    quotas: quotas(&quota_args),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_details(&details);
        }
        NetworkCommand::Suspend { slug, notice } => {
            let details = ops
                .suspend_network(auth::ops(SuspendNetworkRequest { slug, notice })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_details(&details);
        }
        NetworkCommand::Resume { slug } => {
            let details = ops
                .resume_network(auth::ops(ResumeNetworkRequest { slug })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_details(&details);
        }
        NetworkCommand::InviteAdmin {
            slug,
            email,
            ttl_hours,
        } => {
            let invitation = ops
                .invite_admin(auth::ops(InviteAdminRequest {
                    slug,
                    email,
                    ttl_hours,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_invitation(&invitation);
        }
    }
    Ok(())
}

fn print_token(info: &TokenInfo) {
    let revoked = match &info.revoked_at {
        Some(at) => format!("revoked {}", time(Some(at))),
        None => "active".into(),
    };
    println!(
        "{}\t{}\t{}\t{}\t{revoked}",
        info.id,
        info.name,
        info.scopes.join(","),
        time(info.created_at.as_ref())
    );
}

pub async fn token(url: &str, command: TokenCommand) -> anyhow::Result<()> {
    let mut ops = OpsServiceClient::new(channel(url).await?);
    match command {
        TokenCommand::Create { name, scopes } => {
            let response = ops
                .create_token(auth::ops(CreateTokenRequest { name, scopes })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            if let Some(info) = &response.info {
                print_token(info);
            }
            println!("token (shown once): {}", response.token);
        }
        TokenCommand::List => {
            let tokens = ops
                .list_tokens(auth::ops(ListTokensRequest {})?)
                .await
                .map_err(grpc_error)?
                .into_inner()
                .tokens;
            for info in &tokens {
                print_token(info);
            }
        }
        TokenCommand::Revoke { id } => {
            let info = ops
                .revoke_token(auth::ops(RevokeTokenRequest { id })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_token(&info);
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ReindexArgs {
    /// search (a new index beside the old, swapped in), feeds (timelines
    /// re-applied) or all.
    #[arg(long, default_value = "all")]
    scope: String,
}

pub async fn reindex(url: &str, args: ReindexArgs) -> anyhow::Result<()> {
    let mut ops = OpsServiceClient::new(channel(url).await?);
    let report = ops
        .reindex(auth::ops(anp_proto::aggregator::v1::ReindexRequest {
            scope: args.scope,
        })?)
        .await
        .map_err(grpc_error)?
        .into_inner();
    println!(
        "rebuilt from {} events in {:.1} s ({:.0} events/s); search holds {} documents",
        report.events,
        report.seconds,
        report.events as f64 / report.seconds.max(0.001),
        report.search_documents
    );
    Ok(())
}

pub async fn audit(url: &str, args: AuditArgs) -> anyhow::Result<()> {
    let mut ops = OpsServiceClient::new(channel(url).await?);
    let entries = ops
        .list_audit(auth::ops(ListAuditRequest {
            network_slug: args.network,
            before_id: args.before,
            limit: args.limit,
        })?)
        .await
        .map_err(grpc_error)?
        .into_inner()
        .entries;
    for entry in &entries {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            entry.id,
            time(entry.at.as_ref()),
            entry.token_name,
            entry.action,
            if entry.network_slug.is_empty() {
                "-"
            } else {
                &entry.network_slug
            },
            entry.outcome,
            entry.detail
        );
    }
    Ok(())
}

pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate => {
            let (signer, seed) = anp_session::Signer::generate()?;
            println!("ANP_SESSION_SIGNING_KEY={seed}");
            println!("ANP_SESSION_PUBLIC_KEY={}", signer.public_key());
        }
    }
    Ok(())
}
