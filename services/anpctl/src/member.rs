//! The member side: accounts, sites and members, with a session token.

use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use anp_proto::sites::v1::*;
use anyhow::bail;
use clap::{Args, Subcommand};

use crate::{auth, channel, grpc_error, split_site, time};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account and sign in.
    Signup {
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: String,
        /// Read the password from standard input (else ANP_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign in; the session is saved for the next commands.
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the session.
    Logout,
    /// Who you are and where you are a member.
    Whoami,
}

/// A site's settings as flags; unset flags keep the current value.
#[derive(Args, Debug, Default)]
pub struct SettingsArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Languages, comma-separated: en,es.
    #[arg(long, value_delimiter = ',')]
    languages: Option<Vec<String>>,
    /// Issue tags, comma-separated: climate,labor.
    #[arg(long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// Linked social accounts and feeds, comma-separated URLs.
    #[arg(long, value_delimiter = ',')]
    feeds: Option<Vec<String>>,
    #[arg(long)]
    domain: Option<String>,
    #[arg(long)]
    city: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. US.
    #[arg(long)]
    country: Option<String>,
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    lat: Option<f64>,
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lon: Option<f64>,
    /// open or invite-only.
    #[arg(long)]
    join: Option<String>,
}

impl SettingsArgs {
    fn apply(self, settings: &mut SiteSettings) -> anyhow::Result<()> {
        if let Some(name) = self.name {
            settings.name = name;
        }
        if let Some(description) = self.description {
            settings.description = description;
        }
        if let Some(languages) = self.languages {
            settings.languages = languages;
        }
        if let Some(tags) = self.tags {
            settings.tags = tags;
        }
        if let Some(feeds) = self.feeds {
            settings.feed_urls = feeds;
        }
        if let Some(domain) = self.domain {
            settings.custom_domain = domain;
        }
        let place = settings.place.get_or_insert_with(Default::default);
        if let Some(city) = self.city {
            place.city = city;
        }
        if let Some(country) = self.country {
            place.country = country;
        }
        if let (Some(lat), Some(lon)) = (self.lat, self.lon) {
            place.has_coordinates = true;
            place.latitude = lat;
            place.longitude = lon;
        }
        if let Some(join) = self.join {
            settings.join_policy = match join.as_str() {
                "open" => JoinPolicy::Open,
                "invite-only" => JoinPolicy::InviteOnly,
                other => bail!("--join: {other:?} is neither open nor invite-only"),
            } as i32;
        }
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum SiteCommand {
    /// Create a site: `anpctl site create <network>/<site> --name <name>`.
    Create {
        path: String,
        /// Slug of the site to nest it under.
        #[arg(long, default_value = "")]
        parent: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the sites of a network, or of every network.
    List {
        network: Option<String>,
        #[arg(long)]
        archived: bool,
    },
    /// Show a site and its settings.
    Show { path: String },
    /// Change a site's settings.
    Set {
        path: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Give a site a new slug (old links keep working) and optionally name.
    Rename {
        path: String,
        new_slug: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Move a site under another site of its network, or to the top level.
    Move {
        path: String,
        /// Slug of the new parent; leave out for the top level.
        #[arg(long, default_value = "")]
        parent: String,
    },
    /// Archive a site (read-only, hidden from lists).
    Archive { path: String },
    /// Restore an archived site.
    Restore { path: String },
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Invite someone to `<network>` or `<network>/<site>`; prints the token to give them.
    Invite {
        scope: String,
        /// member, editor, site_admin or network_admin.
        #[arg(long, default_value = "member")]
        role: String,
        /// Only this address may accept.
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value_t = 0)]
        ttl_hours: u32,
    },
    /// Accept an invitation.
    Accept { token: String },
    /// Join an open site, or ask to join an invite-only one.
    Join {
        scope: String,
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Pending join requests of a site.
    Requests { scope: String },
    /// Approve a join request.
    Approve { request_id: String },
    /// Decline a join request.
    Decline { request_id: String },
    /// Members of a network or site.
    List { scope: String },
    /// Give a member a role.
    Role {
        scope: String,
        account_id: String,
        role: String,
    },
    /// Remove a member.
    Remove { scope: String, account_id: String },
    /// Leave a network or site.
    Leave { scope: String },
}

fn scope(text: &str) -> Scope {
    match text.split_once('/') {
        Some((network, site)) => Scope {
            network_slug: network.to_owned(),
            site_slug: site.to_owned(),
            site_id: String::new(),
        },
        None => Scope {
            network_slug: text.to_owned(),
            ..Default::default()
        },
    }
}

fn site_scope(path: &str) -> anyhow::Result<Scope> {
    let (network, site) = split_site(path)?;
    Ok(Scope {
        network_slug: network,
        site_slug: site,
        site_id: String::new(),
    })
}

pub fn role(text: &str) -> anyhow::Result<i32> {
    Ok(match text {
        "member" => Role::Member,
        "editor" => Role::Editor,
        "site_admin" | "site-admin" => Role::SiteAdmin,
        "network_admin" | "network-admin" => Role::NetworkAdmin,
        other => bail!("role: {other:?} is not member, editor, site_admin or network_admin"),
    } as i32)
}

fn role_text(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Member) => "member",
        Ok(Role::Editor) => "editor",
        Ok(Role::SiteAdmin) => "site_admin",
        Ok(Role::NetworkAdmin) => "network_admin",
        _ => "-",
    }
}

fn print_site(site: &Site) {
    let settings = site.settings.clone().unwrap_or_default();
    let place = settings.place.unwrap_or_default();
    let join = if settings.join_policy == JoinPolicy::InviteOnly as i32 {
        "invite-only"
    } else {
        "open"
    };
    println!(
        "{}/{}\t{}\t{}\t{}\t{}\t{}{}",
        site.network_slug,
        site.slug,
        site.name,
        join,
        settings.tags.join(","),
        settings.languages.join(","),
        [place.city, place.country]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if site.archived { "\tarchived" } else { "" }
    );
}

fn print_membership(membership: &Membership) {
    let scope = if membership.site_slug.is_empty() {
        membership.network_slug.clone()
    } else {
        format!("{}/{}", membership.network_slug, membership.site_slug)
    };
    println!(
        "{}\t{}\t{scope}\t{}\tsince {}",
        membership.account_id,
        membership.display_name,
        role_text(membership.role),
        time(membership.joined_at.as_ref())
    );
}

fn print_request(request: &JoinRequestInfo) {
    println!(
        "{}\t{}\t{}/{}\t{}\t{}\t{}",
        request.id,
        request.display_name,
        request.network_slug,
        request.site_slug,
        request.status,
        time(request.requested_at.as_ref()),
        request.message
    );
}

pub async fn account(url: &str, command: AccountCommand) -> anyhow::Result<()> {
    let mut sites = SitesServiceClient::new(channel(url).await?);
    match command {
        AccountCommand::Signup {
            email,
            display_name,
            password_stdin,
        } => {
            let grant = sites
                .sign_up(SignUpRequest {
                    email,
                    password: auth::password(password_stdin)?,
                    display_name,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            let path = auth::save_session(&grant.token)?;
            let account = grant.account.unwrap_or_default();
            println!(
                "signed up {} ({}); session saved in {}",
                account.email,
                account.id,
                path.display()
            );
        }
        AccountCommand::Login {
            email,
            password_stdin,
        } => {
            let grant = sites
                .sign_in(SignInRequest {
                    email,
                    password: auth::password(password_stdin)?,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            let path = auth::save_session(&grant.token)?;
            println!(
                "signed in until {}; session saved in {}",
                time(grant.expires_at.as_ref()),
                path.display()
            );
        }
        AccountCommand::Logout => {
            sites
                .sign_out(auth::session(SignOutRequest {})?)
                .await
                .map_err(grpc_error)?;
            auth::forget_session();
            println!("signed out");
        }
        AccountCommand::Whoami => {
            let me = sites
                .who_am_i(auth::session(WhoAmIRequest {})?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            let account = me.account.unwrap_or_default();
            println!(
                "{} <{}> {}",
                account.display_name, account.email, account.id
            );
            for membership in &me.memberships {
                print_membership(membership);
            }
        }
    }
    Ok(())
}

pub async fn site(url: &str, command: SiteCommand) -> anyhow::Result<()> {
    let mut sites = SitesServiceClient::new(channel(url).await?);
    match command {
        SiteCommand::Create {
            path,
            parent,
            settings,
        } => {
            let (network_slug, slug) = split_site(&path)?;
            let mut values = SiteSettings {
                languages: vec!["en".into()],
                ..Default::default()
            };
            settings.apply(&mut values)?;
            let site = sites
                .create_site(auth::session(CreateSiteRequest {
                    network_slug,
                    slug,
                    name: values.name.clone(),
                    parent_site_slug: parent,
                    settings: Some(values),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!(
                "created {}/{} ({}) {}",
                site.network_slug, site.slug, site.name, site.id
            );
        }
        SiteCommand::List { network, archived } => {
            let list = sites
                .list_sites(ListSitesRequest {
                    network_slug: network.unwrap_or_default(),
                    include_archived: archived,
                })
                .await
                .map_err(grpc_error)?
                .into_inner()
                .sites;
            for site in &list {
                print_site(site);
            }
        }
        SiteCommand::Show { path } => {
            let (network_slug, site_slug) = split_site(&path)?;
            let site = sites
                .get_site(GetSiteRequest {
                    site_id: String::new(),
                    network_slug,
                    site_slug,
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
            let settings = site.settings.unwrap_or_default();
            if !settings.description.is_empty() {
                println!("{}", settings.description);
            }
            for url in &settings.feed_urls {
                println!("feed\t{url}");
            }
            if !settings.custom_domain.is_empty() {
                println!("domain\t{}", settings.custom_domain);
            }
        }
        SiteCommand::Set { path, settings } => {
            let site_ref = site_scope(&path)?;
            let current = sites
                .get_site(GetSiteRequest {
                    site_id: String::new(),
                    network_slug: site_ref.network_slug.clone(),
                    site_slug: site_ref.site_slug.clone(),
                })
                .await
                .map_err(grpc_error)?
                .into_inner();
            let mut values = current.settings.unwrap_or_default();
            settings.apply(&mut values)?;
            let site = sites
                .update_site(auth::session(UpdateSiteRequest {
                    site: Some(site_ref),
                    settings: Some(values),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
        }
        SiteCommand::Rename {
            path,
            new_slug,
            name,
        } => {
            let site = sites
                .rename_site(auth::session(RenameSiteRequest {
                    site: Some(site_scope(&path)?),
                    new_slug,
                    new_name: name,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
        }
        SiteCommand::Move { path, parent } => {
            let site = sites
                .move_site(auth::session(MoveSiteRequest {
                    site: Some(site_scope(&path)?),
                    new_parent_site_slug: parent,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
        }
        SiteCommand::Archive { path } => {
            let site = sites
                .archive_site(auth::session(ArchiveSiteRequest {
                    site: Some(site_scope(&path)?),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
        }
        SiteCommand::Restore { path } => {
            let site = sites
                .restore_site(auth::session(RestoreSiteRequest {
                    site: Some(site_scope(&path)?),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_site(&site);
        }
    }
    Ok(())
}

pub async fn member(url: &str, command: MemberCommand) -> anyhow::Result<()> {
    let mut sites = SitesServiceClient::new(channel(url).await?);
    let approve = matches!(command, MemberCommand::Approve { .. });
    match command {
        MemberCommand::Invite {
            scope: text,
            role: role_name,
            email,
            ttl_hours,
        } => {
            let invitation = sites
                .invite(auth::session(InviteRequest {
                    scope: Some(scope(&text)),
                    role: role(&role_name)?,
                    ttl_hours,
                    email,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            crate::ops::print_invitation(&invitation);
        }
        MemberCommand::Accept { token } => {
            let membership = sites
                .accept_invitation(auth::session(AcceptInvitationRequest { token })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_membership(&membership);
        }
        MemberCommand::Join {
            scope: text,
            message,
        } => {
            let joined = sites
                .join(auth::session(JoinRequest {
                    scope: Some(scope(&text)),
                    message,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            if let Some(membership) = &joined.membership {
                print_membership(membership);
            }
            if let Some(request) = &joined.request {
                print_request(request);
            }
        }
        MemberCommand::Requests { scope: text } => {
            let requests = sites
                .list_join_requests(auth::session(ListJoinRequestsRequest {
                    scope: Some(scope(&text)),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner()
                .requests;
            for request in &requests {
                print_request(request);
            }
        }
        MemberCommand::Approve { request_id } | MemberCommand::Decline { request_id } => {
            let request = sites
                .decide_join_request(auth::session(DecideJoinRequestRequest {
                    request_id,
                    approve,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_request(&request);
        }
        MemberCommand::List { scope: text } => {
            let members = sites
                .list_members(auth::session(ListMembersRequest {
                    scope: Some(scope(&text)),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner()
                .members;
            for membership in &members {
                print_membership(membership);
            }
        }
        MemberCommand::Role {
            scope: text,
            account_id,
            role: role_name,
        } => {
            let membership = sites
                .set_role(auth::session(SetRoleRequest {
                    scope: Some(scope(&text)),
                    account_id,
                    role: role(&role_name)?,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_membership(&membership);
        }
        MemberCommand::Remove {
            scope: text,
            account_id,
        } => {
            sites
                .remove_member(auth::session(RemoveMemberRequest {
                    scope: Some(scope(&text)),
                    account_id,
                })?)
                .await
                .map_err(grpc_error)?;
            println!("removed");
        }
        MemberCommand::Leave { scope: text } => {
            sites
                .leave(auth::session(LeaveRequest {
                    scope: Some(scope(&text)),
                })?)
                .await
                .map_err(grpc_error)?;
            println!("left {text}");
        }
    }
    Ok(())
}
