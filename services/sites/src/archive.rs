//! Export, import and offboarding of one network (ops API).
//!
//! The sites service exports its own events of the network (and the member
//! accounts' registrations with their keys) and asks every other write
//! service (its "archive peers") for theirs through `NetworkArchive`, with a
//! short-lived grant it signs for the action and the network. The format of
//! the archive file is `anp_archive::format`; the whole flow is in
//! `docs/export-and-offboarding.md`.

use std::collections::{HashMap, HashSet};

use anp_archive::convert::{from_envelope, to_envelope};
use anp_archive::format::FORMAT;
use anp_eventstore::{ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError};
use anp_proto::archive::v1::network_archive_client::NetworkArchiveClient;
use anp_proto::archive::v1::{
    ExportRequest, ImportItem, ImportReply, PurgeRequest, ServiceTally, TallyRequest, import_item,
};
use anp_proto::events::v1 as ev;
use anp_proto::ops::v1::{
    AccountKey, ArchiveItem, ArchiveManifest, ImportNetworkResponse, ImportedService,
    OffboardNetworkRequest, OffboardNetworkResponse, archive_item::Item,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_postgres::GenericClient;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};
use tracing::info;
use uuid::Uuid;

use crate::access::{network_by_id, network_by_slug};
use crate::accounts::account_stream;
use crate::people::network_stream;
use crate::{SERVICE, Sites, SitesError, state};

/// Events per page of an export.
const PAGE: i64 = 1000;
const KEY_BYTES: usize = 32;

/// Another write service holding events of networks.
#[derive(Clone)]
pub struct Peer {
    pub service: String,
    pub client: NetworkArchiveClient<Channel>,
}

/// `ANP_ARCHIVE_PEERS`: `service=url` pairs, comma separated.
pub fn parse_peers(spec: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut peers = Vec::new();
    for pair in spec
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (service, url) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("ANP_ARCHIVE_PEERS: {pair:?} is not service=url"))?;
        let service = service.trim();
        if service.is_empty()
            || service == SERVICE
            || !service.chars().all(|c| c.is_ascii_lowercase())
        {
            anyhow::bail!("ANP_ARCHIVE_PEERS: {service:?} is not another service's name");
        }
        peers.push((service.to_owned(), url.trim().to_owned()));
    }
    Ok(peers)
}

fn peer_error(service: &str) -> impl Fn(Status) -> SitesError + '_ {
    move |status| SitesError::Peer {
        service: service.to_owned(),
        status,
    }
}

fn item(item: Item) -> ArchiveItem {
    ArchiveItem { item: Some(item) }
}

/// Accounts that belong to the network: members, requesters, invitees who
/// accepted.
const NETWORK_ACCOUNTS: &str = "SELECT account_id FROM memberships WHERE network_id = $1 \
     UNION SELECT account_id FROM join_requests WHERE network_id = $1 \
     UNION SELECT accepted_by FROM invitations WHERE network_id = $1 AND accepted_by IS NOT NULL";

impl Sites {
    pub(crate) fn grant<T>(
        &self,
        message: T,
        actor: &str,
        action: &str,
        network_id: Uuid,
    ) -> Result<tonic::Request<T>, SitesError> {
        let token = self
            .signer
            .sign_grant(actor, action, network_id)
            .map_err(|err| SitesError::Internal(err.to_string()))?;
        anp_session::with_bearer(message, &token)
            .map_err(|err| SitesError::Internal(format!("grant: {err}")))
    }

    /// Streams the network's archive: account keys, the events of every
    /// service, then the manifest.
    pub async fn export_network(
        &self,
        slug: &str,
        actor: &str,
    ) -> Result<ReceiverStream<Result<ArchiveItem, Status>>, SitesError> {
        let network = {
            let client = self.pool.get().await?;
            network_by_slug(&**client, slug, false).await?
        };
        let (sender, receiver) = mpsc::channel(64);
        let this = self.clone();
        let actor = actor.to_owned();
        tokio::spawn(async move {
            let slug = network.slug.clone();
            match this.export_into(network, &actor, &sender).await {
                Ok(events) => info!(network = %slug, events, "network exported"),
                Err(err) => {
                    use anp_kit::ServiceError;
                    let _ = sender.send(Err(err.to_status())).await;
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }

    async fn export_into(
        &self,
        network: crate::model::NetworkRow,
        actor: &str,
        sender: &mpsc::Sender<Result<ArchiveItem, Status>>,
    ) -> Result<u64, SitesError> {
        let send = |value: ArchiveItem| async move {
            sender
                .send(Ok(value))
                .await
                .map_err(|_| SitesError::Precondition("export: the client stopped reading".into()))
        };
        let mut tallies = Vec::new();
        let mut keys_sent = 0u64;
        let mut total = 0u64;
        {
            let mut client = self.pool.get().await?;
            // One snapshot for the keys, the accounts and every page.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let keys = tx
                .query(
                    &format!(
                        "SELECT account_id, key FROM account_keys WHERE account_id IN \
                         ({NETWORK_ACCOUNTS}) ORDER BY account_id"
                    ),
                    &[&network.id],
                )
                .await?;
            for row in &keys {
                let account_id: Uuid = row.get(0);
                send(item(Item::AccountKey(AccountKey {
                    account_id: account_id.to_string(),
                    key: row.get(1),
                })))
                .await?;
                keys_sent += 1;
            }
            let mut events = 0u64;
            for row in &keys {
                let account_id: Uuid = row.get(0);
                for event in
                    anp_eventstore::load_stream_in(&*tx, &account_stream(account_id)).await?
                {
                    send(item(Item::Event(to_envelope(SERVICE, &event)))).await?;
                    events += 1;
                }
            }
            let mut after = Position::default();
            let mut last = String::new();
            loop {
                let page = anp_eventstore::network_events_in(&*tx, network.id, after, PAGE).await?;
                let Some(end) = page.last() else { break };
                after = end.global;
                last = end.event_id.to_string();
                for event in &page {
                    send(item(Item::Event(to_envelope(SERVICE, event)))).await?;
                    events += 1;
                }
            }
            total += events;
            tallies.push(ServiceTally {
                service: SERVICE.to_owned(),
                events,
                last_event_id: last,
            });
        }
        for peer in &self.peers {
            let fail = peer_error(&peer.service);
            let request = self.grant(
                ExportRequest {
                    network_id: network.id.to_string(),
                },
                actor,
                "export",
                network.id,
            )?;
            let mut stream = peer
                .client
                .clone()
                .export(request)
                .await
                .map_err(&fail)?
                .into_inner();
            let (mut events, mut last) = (0u64, String::new());
            while let Some(mut envelope) = stream.message().await.map_err(&fail)? {
                envelope.service = peer.service.clone();
                last = envelope.event_id.clone();
                send(item(Item::Event(envelope))).await?;
                events += 1;
            }
            total += events;
            tallies.push(ServiceTally {
                service: peer.service.clone(),
                events,
                last_event_id: last,
            });
        }
        send(item(Item::Manifest(ArchiveManifest {
            format: FORMAT.to_owned(),
            network_id: network.id.to_string(),
            network_slug: network.slug.clone(),
            network_name: network.name.clone(),
            exported_at: Some(anp_kit::timestamp(chrono::Utc::now())),
            services: tallies,
            account_keys: keys_sent,
        })))
        .await?;
        Ok(total)
    }

    /// Imports an archive streamed as the export wrote it (manifest, keys,
    /// events). The sites part is one transaction, committed after every
    /// other service has committed its part; events already here are
    /// skipped, so an import that failed half-way can simply run again.
    pub async fn import_network(
        &self,
        mut items: Streaming<ArchiveItem>,
        actor: &str,
    ) -> Result<(ImportNetworkResponse, String), SitesError> {
        let stream_error =
            |status: Status| SitesError::Invalid(format!("archive: {}", status.message()));
        let first = items
            .message()
            .await
            .map_err(stream_error)?
            .ok_or_else(|| SitesError::invalid("archive: empty"))?;
        let Some(Item::Manifest(manifest)) = first.item else {
            return Err(SitesError::invalid("archive: the manifest must come first"));
        };
        if manifest.format != FORMAT {
            return Err(SitesError::Invalid(format!(
                "manifest.format: {:?} is not {FORMAT:?}",
                manifest.format
            )));
        }
        let network_id: Uuid = manifest.network_id.parse().map_err(|_| {
            SitesError::Invalid(format!(
                "manifest.network_id: {:?} is not a UUID",
                manifest.network_id
            ))
        })?;
        anp_kit::check_slug("manifest.network_slug", &manifest.network_slug)
            .map_err(SitesError::Invalid)?;
        let mut expected: HashMap<String, u64> = HashMap::new();
        for tally in &manifest.services {
            if tally.service != SERVICE && !self.peers.iter().any(|p| p.service == tally.service) {
                return Err(SitesError::Precondition(format!(
                    "manifest.services: the archive holds events of {:?}, which this \
                     installation does not run",
                    tally.service
                )));
            }
            expected.insert(tally.service.clone(), tally.events);
        }

        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut imports: HashMap<String, PeerImport> = HashMap::new();
        let mut received: HashMap<String, u64> = HashMap::new();
        let (mut keys, mut accounts_imported) = (0u64, 0u64);
        let mut existing: HashSet<Uuid> = HashSet::new();
        let (mut sites_imported, mut sites_skipped) = (0u64, 0u64);
        let mut index = 0u64;
        while let Some(next) = items.message().await.map_err(stream_error)? {
            match next.item {
                Some(Item::AccountKey(key)) => {
                    if index > 0 {
                        return Err(SitesError::invalid(
                            "account_key: account keys must come before the events",
                        ));
                    }
                    let account_id: Uuid = key.account_id.parse().map_err(|_| {
                        SitesError::Invalid(format!(
                            "account_key {keys}: account_id: {:?} is not a UUID",
                            key.account_id
                        ))
                    })?;
                    if key.key.len() != KEY_BYTES {
                        return Err(SitesError::Invalid(format!(
                            "account_key {keys}: key: must be {KEY_BYTES} bytes"
                        )));
                    }
                    keys += 1;
                    let here = tx
                        .query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account_id])
                        .await?
                        .is_some();
                    if here {
                        existing.insert(account_id);
                    } else {
                        tx.execute(
                            "INSERT INTO account_keys (account_id, key) VALUES ($1, $2) \
                             ON CONFLICT (account_id) DO UPDATE SET key = EXCLUDED.key",
                            &[&account_id, &key.key],
                        )
                        .await?;
                        accounts_imported += 1;
                    }
                }
                Some(Item::Event(envelope)) => {
                    let count = received.entry(envelope.service.clone()).or_default();
                    *count += 1;
                    let service = envelope.service.clone();
                    if service == SERVICE {
                        let event = from_envelope(index, &envelope)
                            .map_err(|err| SitesError::Invalid(err.to_string()))?;
                        let event_id = event.event_id;
                        let fresh = self
                            .import_sites_event(&*tx, network_id, &existing, event)
                            .await
                            .map_err(|err| match err {
                                // It does not decode, or names nothing valid.
                                SitesError::Internal(message) => {
                                    SitesError::Invalid(format!("event {event_id}: {message}"))
                                }
                                SitesError::Store(StoreError::Conflict { stream_id, .. }) => {
                                    SitesError::Taken {
                                        field: "stream_id",
                                        value: format!(
                                            "{stream_id} (other events of it are here: the \
                                             network, or part of it, already is)"
                                        ),
                                    }
                                }
                                other => other,
                            })?;
                        if fresh {
                            sites_imported += 1;
                        } else {
                            sites_skipped += 1;
                        }
                    } else {
                        if !expected.contains_key(&service) {
                            return Err(SitesError::Invalid(format!(
                                "event {index}: service: {service:?} is not in the manifest"
                            )));
                        }
                        if !imports.contains_key(&service) {
                            let import = self.start_import(&service, actor, network_id)?;
                            imports.insert(service.clone(), import);
                        }
                        let Some(import) = imports.get_mut(&service) else {
                            continue;
                        };
                        import.send(envelope).await?;
                    }
                    index += 1;
                }
                Some(Item::Manifest(_)) => {
                    return Err(SitesError::invalid("archive: a second manifest"));
                }
                None => return Err(SitesError::invalid("archive: an empty item")),
            }
        }
        // Everything announced came, or nothing is kept.
        if keys != manifest.account_keys {
            return Err(SitesError::Invalid(format!(
                "archive: {keys} account keys came, the manifest says {}",
                manifest.account_keys
            )));
        }
        for (service, count) in &expected {
            let came = received.get(service).copied().unwrap_or(0);
            if came != *count {
                return Err(SitesError::Invalid(format!(
                    "archive: {came} events of {service} came, the manifest says {count}"
                )));
            }
        }
        let mut services = vec![ImportedService {
            service: SERVICE.to_owned(),
            imported: sites_imported,
            skipped: sites_skipped,
        }];
        for (service, import) in imports {
            let reply = import.finish().await?;
            services.push(ImportedService {
                service,
                imported: reply.imported,
                skipped: reply.skipped,
            });
        }
        let network = network_by_id(&*tx, network_id, false).await?;
        tx.commit().await?;
        info!(network = %network.slug, accounts_imported, "network imported");
        let detail = format!(
            "network {}: {}",
            network.slug,
            services
                .iter()
                .map(|s| format!(
                    "{} {} imported, {} skipped",
                    s.service, s.imported, s.skipped
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        Ok((
            ImportNetworkResponse {
                network: Some(network.to_proto()),
                services,
                accounts_imported,
                accounts_existing: existing.len() as u64,
            },
            detail,
        ))
    }

    /// Writes one archived sites event and applies it; false when it was
    /// already here.
    async fn import_sites_event<C: GenericClient>(
        &self,
        client: &C,
        network_id: Uuid,
        existing: &HashSet<Uuid>,
        event: RecordedEvent,
    ) -> Result<bool, SitesError> {
        if let Some(account) = event.stream_id.strip_prefix("account-") {
            let account_id: Uuid = account.parse().map_err(|_| {
                SitesError::Invalid(format!(
                    "event {}: stream_id: not an account",
                    event.event_id
                ))
            })?;
            if existing.contains(&account_id) {
                return Ok(false);
            }
            let inserted = anp_eventstore::import_in(client, std::slice::from_ref(&event)).await?;
            let fresh = !inserted.is_empty();
            // An account forgotten here earlier still has this event: with
            // its key back, applying it again brings the account back.
            state::apply(client, inserted.first().unwrap_or(&event)).await?;
            return Ok(fresh);
        }
        check_inside(client, network_id, &event).await?;
        let inserted = anp_eventstore::import_in(client, std::slice::from_ref(&event)).await?;
        for event in &inserted {
            state::apply(client, event).await?;
        }
        Ok(!inserted.is_empty())
    }

    fn start_import(
        &self,
        service: &str,
        actor: &str,
        network_id: Uuid,
    ) -> Result<PeerImport, SitesError> {
        let peer = self
            .peers
            .iter()
            .find(|peer| peer.service == service)
            .ok_or_else(|| SitesError::Precondition(format!("no archive peer {service:?}")))?;
        let (sender, receiver) = mpsc::channel(64);
        let request = self.grant(ReceiverStream::new(receiver), actor, "import", network_id)?;
        let mut client = peer.client.clone();
        let task = tokio::spawn(async move {
            client
                .import(request)
                .await
                .map(tonic::Response::into_inner)
        });
        Ok(PeerImport {
            service: service.to_owned(),
            sender,
            task,
            sent: 0,
        })
    }

    /// Deletes a suspended network whose export is current and forgets the
    /// members who belong to no other network.
    pub async fn offboard_network(
        &self,
        request: &OffboardNetworkRequest,
        actor: &str,
        traceparent: Option<String>,
    ) -> Result<(OffboardNetworkResponse, String), SitesError> {
        anp_kit::check_slug("slug", &request.slug).map_err(SitesError::Invalid)?;
        if request.confirm_slug != request.slug {
            return Err(SitesError::Invalid(format!(
                "confirm_slug: must repeat the network's slug {:?}",
                request.slug
            )));
        }
        let network = {
            let client = self.pool.get().await?;
            network_by_slug(&**client, &request.slug, false).await?
        };
        if !network.suspended() {
            return Err(SitesError::Precondition(format!(
                "network {:?} is active: suspend it and export it first, so that nothing \
                 changes after the export (`anpctl network offboard` does both)",
                network.slug
            )));
        }
        let exported: HashMap<&str, &str> = request
            .exported
            .iter()
            .map(|tally| (tally.service.as_str(), tally.last_event_id.as_str()))
            .collect();
        let exported_last = |service: &str| {
            exported.get(service).copied().ok_or_else(|| {
                SitesError::Invalid(format!(
                    "exported: no entry for {service:?}: pass the services of the export's manifest"
                ))
            })
        };
        let sites_last = exported_last(SERVICE)?;
        // Nothing written anywhere since the export...
        for peer in &self.peers {
            let expected = exported_last(&peer.service)?;
            let fail = peer_error(&peer.service);
            let tally = peer
                .client
                .clone()
                .tally(self.grant(
                    TallyRequest {
                        network_id: network.id.to_string(),
                    },
                    actor,
                    "purge",
                    network.id,
                )?)
                .await
                .map_err(&fail)?
                .into_inner();
            // Empty: purged already by an offboarding that failed later.
            if tally.last_event_id != expected && !tally.last_event_id.is_empty() {
                return Err(changed_since(&peer.service, &tally.last_event_id, expected));
            }
        }
        {
            let client = self.pool.get().await?;
            check_sites_unchanged(&**client, network.id, sites_last).await?;
        }
        // ...then every other service deletes its events of the network...
        let mut deleted = Vec::new();
        for peer in &self.peers {
            let reply = peer
                .client
                .clone()
                .purge(self.grant(
                    PurgeRequest {
                        network_id: network.id.to_string(),
                        expected_last_event_id: exported_last(&peer.service)?.to_owned(),
                    },
                    actor,
                    "purge",
                    network.id,
                )?)
                .await
                .map_err(peer_error(&peer.service))?
                .into_inner();
            deleted.push(ServiceTally {
                service: peer.service.clone(),
                events: reply.deleted,
                last_event_id: String::new(),
            });
        }
        // ...and sites last, in one transaction: its events, its state, and
        // the members nobody else knows.
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let network = network_by_id(&*tx, network.id, true).await?;
        check_sites_unchanged(&*tx, network.id, sites_last).await?;
        let accounts: Vec<Uuid> = tx
            .query(NETWORK_ACCOUNTS, &[&network.id])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut forget = Vec::new();
        for account_id in &accounts {
            let elsewhere = tx
                .query_opt(
                    "SELECT 1 FROM memberships WHERE account_id = $1 AND network_id <> $2 LIMIT 1",
                    &[account_id, &network.id],
                )
                .await?
                .is_some();
            if !elsewhere {
                forget.push(*account_id);
            }
        }
        let sites_deleted = anp_eventstore::delete_network_events_in(&*tx, network.id).await?;
        deleted.insert(
            0,
            ServiceTally {
                service: SERVICE.to_owned(),
                events: sites_deleted,
                last_event_id: String::new(),
            },
        );
        // The end belongs to no network (like an account's events): it is
        // never part of the network's events, so an export taken later, or
        // the network imported here again, does not meet it.
        let offboarded = NewEvent::new(
            "NetworkOffboarded",
            Uuid::nil(),
            actor,
            ev::NetworkOffboarded {
                network_id: network.id.to_string(),
                slug: network.slug.clone(),
            }
            .encode_to_vec(),
        )
        .with_traceparent(traceparent.clone());
        state::commit(
            &*tx,
            &format!("offboarded-{}", network.id),
            ExpectedVersion::Any,
            vec![offboarded],
        )
        .await?;
        for account_id in &forget {
            let event = NewEvent::new(
                "AccountForgotten",
                Uuid::nil(),
                actor,
                ev::AccountForgotten {
                    account_id: account_id.to_string(),
                }
                .encode_to_vec(),
            )
            .with_traceparent(traceparent.clone());
            state::commit(
                &*tx,
                &account_stream(*account_id),
                ExpectedVersion::Any,
                vec![event],
            )
            .await?;
        }
        tx.commit().await?;
        let kept = (accounts.len() - forget.len()) as u64;
        info!(network = %network.slug, forgotten = forget.len(), kept, "network offboarded");
        let detail = format!(
            "{}; {} accounts forgotten, {kept} kept",
            deleted
                .iter()
                .map(|t| format!("{} events deleted in {}", t.events, t.service))
                .collect::<Vec<_>>()
                .join(", "),
            forget.len()
        );
        Ok((
            OffboardNetworkResponse {
                deleted,
                accounts_forgotten: forget.len() as u64,
                accounts_kept: kept,
            },
            detail,
        ))
    }
}

/// An imported event must not name, touch or reach into another network:
/// its envelope and its payload name the manifest's network, and every site,
/// invitation and join request it names is the network's or new.
async fn check_inside<C: GenericClient>(
    client: &C,
    network_id: Uuid,
    event: &RecordedEvent,
) -> Result<(), SitesError> {
    let outside = |what: &str| {
        SitesError::Invalid(format!(
            "event {}: {what} is not of the manifest's network",
            event.event_id
        ))
    };
    let named = state::named(event)?;
    if event.network_id != network_id || named.network_id != Some(network_id) {
        return Err(outside("network_id"));
    }
    let own_stream = event.stream_id == network_stream(network_id)
        || event
            .stream_id
            .strip_prefix("site-")
            .and_then(|site| site.parse::<Uuid>().ok())
            .is_some_and(|site| named.sites.contains(&site));
    if !own_stream {
        return Err(outside("stream_id"));
    }
    for site in &named.sites {
        let row = client
            .query_opt("SELECT network_id FROM sites WHERE id = $1", &[site])
            .await?;
        if row.is_some_and(|row| row.get::<_, Uuid>(0) != network_id) {
            return Err(outside("site_id"));
        }
    }
    for (table, id) in [
        ("invitations", named.invitation),
        ("join_requests", named.request),
    ] {
        let Some(id) = id else { continue };
        let row = client
            .query_opt(
                &format!("SELECT network_id FROM {table} WHERE id = $1"),
                &[&id],
            )
            .await?;
        if row.is_some_and(|row| row.get::<_, Uuid>(0) != network_id) {
            return Err(outside(table));
        }
    }
    Ok(())
}

fn changed_since(service: &str, now: &str, archived: &str) -> SitesError {
    SitesError::Precondition(format!(
        "the network changed since the export ({service} now ends at event {now:?}, the \
         archive at {archived:?}): export again"
    ))
}

async fn check_sites_unchanged<C: GenericClient>(
    client: &C,
    network_id: Uuid,
    expected: &str,
) -> Result<(), SitesError> {
    let (_, last) = anp_eventstore::network_tally_in(client, network_id).await?;
    let last = last.map(|id| id.to_string()).unwrap_or_default();
    if last != expected {
        return Err(changed_since(SERVICE, &last, expected));
    }
    Ok(())
}

/// One peer's part of an import, streaming while the archive comes in.
struct PeerImport {
    service: String,
    sender: mpsc::Sender<ImportItem>,
    task: tokio::task::JoinHandle<Result<ImportReply, Status>>,
    sent: u64,
}

impl PeerImport {
    async fn send(&mut self, envelope: ev::Envelope) -> Result<(), SitesError> {
        let item = ImportItem {
            item: Some(import_item::Item::Event(envelope)),
        };
        if self.sender.send(item).await.is_err() {
            // The peer stopped reading: its answer says why.
            return Err(self.failure().await);
        }
        self.sent += 1;
        Ok(())
    }

    async fn failure(&mut self) -> SitesError {
        match (&mut self.task).await {
            Ok(Err(status)) => peer_error(&self.service)(status),
            Ok(Ok(_)) => SitesError::Internal(format!("{}: import ended early", self.service)),
            Err(err) => SitesError::Internal(format!("{}: {err}", self.service)),
        }
    }

    /// Tells the peer everything came; it commits and answers.
    async fn finish(mut self) -> Result<ImportReply, SitesError> {
        let done = ImportItem {
            item: Some(import_item::Item::Done(self.sent)),
        };
        if self.sender.send(done).await.is_err() {
            return Err(self.failure().await);
        }
        drop(self.sender);
        match self.task.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(status)) => Err(peer_error(&self.service)(status)),
            Err(err) => Err(SitesError::Internal(format!("{}: {err}", self.service))),
        }
    }
}
