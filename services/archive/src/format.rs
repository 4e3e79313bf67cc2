//! The archive on disk: a tar holding, in this order,
//!
//! * `manifest.json` — what the archive holds ([`Manifest`]);
//! * `accounts/keys.ndjson` — one `{"account_id", "key"}` per member account:
//!   the key that unseals its personal data (email, name, password hash);
//! * `events/<service>.ndjson` — every event of the network in that
//!   service, in its global order, one JSON object per line with the
//!   protobuf payload in base64 (schemas in `proto/anp/events/v1`).
//!
//! Each file's SHA-256 and line count are in the manifest; [`open`] checks
//! them before anything is imported. The archive holds personal data (sealed,
//! with its keys beside it): it is written readable by its owner only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anp_proto::archive::v1::ServiceTally;
use anp_proto::events::v1::Envelope;
use anp_proto::ops::v1::{AccountKey, ArchiveItem, ArchiveManifest, archive_item::Item};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ArchiveError;

/// The format this code writes and reads.
pub const FORMAT: &str = "anp-network-archive/1";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const KEYS_FILE: &str = "accounts/keys.ndjson";
/// Longest line of any NDJSON file: an event's payload is at most 1 MiB.
const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The file of one service's events.
pub fn events_file(service: &str) -> String {
    format!("events/{service}.ndjson")
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub network_id: Uuid,
    pub network_slug: String,
    pub network_name: String,
    pub exported_at: chrono::DateTime<chrono::Utc>,
    pub services: Vec<ServiceEntry>,
    pub account_keys: FileEntry,
}

/// One service's events in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub service: String,
    /// The network's last event in that service when it was exported (empty:
    /// none); offboarding checks it is still the last.
    pub last_event_id: String,
    #[serde(flatten)]
    pub file: FileEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub file: String,
    pub lines: u64,
    pub sha256: String,
}

/// One line of `events/<service>.ndjson`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    pub event_id: String,
    pub stream_id: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub network_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site_id: String,
    pub actor: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// The protobuf-encoded event, base64.
    pub payload: String,
}

/// One line of `accounts/keys.ndjson`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLine {
    pub account_id: String,
    /// base64
    pub key: String,
}

impl EventLine {
    pub fn from_envelope(envelope: &Envelope) -> Self {
        let occurred = envelope.occurred_at.unwrap_or_default();
        EventLine {
            event_id: envelope.event_id.clone(),
            stream_id: envelope.stream_id.clone(),
            version: envelope.version,
            event_type: envelope.event_type.clone(),
            schema_version: envelope.schema_version,
            network_id: envelope.network_id.clone(),
            site_id: envelope.site_id.clone(),
            actor: envelope.actor.clone(),
            occurred_at: chrono::DateTime::from_timestamp(
                occurred.seconds,
                u32::try_from(occurred.nanos).unwrap_or(0),
            )
            .unwrap_or_default(),
            payload: STANDARD.encode(&envelope.payload),
        }
    }

    pub fn to_envelope(&self, service: &str, place: &str) -> Result<Envelope, ArchiveError> {
        Ok(Envelope {
            event_id: self.event_id.clone(),
            stream_id: self.stream_id.clone(),
            version: self.version,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            service: service.to_owned(),
            network_id: self.network_id.clone(),
            site_id: self.site_id.clone(),
            actor: self.actor.clone(),
            occurred_at: Some(anp_kit::timestamp(self.occurred_at)),
            traceparent: String::new(),
            payload: STANDARD.decode(&self.payload).map_err(|err| {
                ArchiveError::Invalid(format!("{place}: payload is not base64: {err}"))
            })?,
        })
    }
}

struct Part {
    path: PathBuf,
    writer: BufWriter<File>,
    hasher: Sha256,
    lines: u64,
    last_event_id: String,
}

impl Part {
    fn write_line<T: Serialize>(&mut self, value: &T) -> Result<(), ArchiveError> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.hasher.update(&line);
        self.writer.write_all(&line)?;
        self.lines += 1;
        Ok(())
    }

    fn entry(self, file: &str) -> Result<(FileEntry, PathBuf), ArchiveError> {
        self.writer.into_inner().map_err(|err| err.into_error())?;
        Ok((
            FileEntry {
                file: file.to_owned(),
                lines: self.lines,
                sha256: hex(&self.hasher.finalize()),
            },
            self.path,
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Collects what an export sends, then writes the archive.
pub struct ArchiveWriter {
    dir: tempfile::TempDir,
    keys: Part,
    services: BTreeMap<String, Part>,
    /// Services in the order their first event came.
    order: Vec<String>,
}

impl ArchiveWriter {
    pub fn new() -> Result<Self, ArchiveError> {
        let dir = tempfile::tempdir()?;
        let keys = Self::part(&dir, "keys")?;
        Ok(ArchiveWriter {
            dir,
            keys,
            services: BTreeMap::new(),
            order: Vec::new(),
        })
    }

    fn part(dir: &tempfile::TempDir, name: &str) -> Result<Part, ArchiveError> {
        let path = dir.path().join(name);
        Ok(Part {
            writer: BufWriter::new(File::create(&path)?),
            path,
            hasher: Sha256::new(),
            lines: 0,
            last_event_id: String::new(),
        })
    }

    /// Adds an account key or an event; returns the manifest when that is
    /// what came (the export's last item).
    pub fn push(&mut self, item: ArchiveItem) -> Result<Option<ArchiveManifest>, ArchiveError> {
        match item.item {
            Some(Item::AccountKey(key)) => {
                self.keys.write_line(&KeyLine {
                    account_id: key.account_id,
                    key: STANDARD.encode(&key.key),
                })?;
            }
            Some(Item::Event(envelope)) => {
                let service = envelope.service.clone();
                if !self.services.contains_key(&service) {
                    if service.is_empty()
                        || !service.chars().all(|c| c.is_ascii_lowercase())
                        || service.len() > 32
                    {
                        return Err(ArchiveError::Invalid(format!(
                            "event {}: service: {service:?} is not a service name",
                            envelope.event_id
                        )));
                    }
                    let part = Self::part(&self.dir, &service)?;
                    self.services.insert(service.clone(), part);
                    self.order.push(service.clone());
                }
                let part = self
                    .services
                    .get_mut(&service)
                    .ok_or_else(|| ArchiveError::Invalid(format!("service {service}: no file")))?;
                part.last_event_id = envelope.event_id.clone();
                part.write_line(&EventLine::from_envelope(&envelope))?;
            }
            Some(Item::Manifest(manifest)) => return Ok(Some(manifest)),
            None => {}
        }
        Ok(None)
    }

    /// Checks what came against the export's manifest and writes the tar to
    /// `out` (readable by its owner only; written whole or not at all).
    pub fn finish(self, exported: &ArchiveManifest, out: &Path) -> Result<Manifest, ArchiveError> {
        let network_id: Uuid = exported
            .network_id
            .parse()
            .map_err(|_| ArchiveError::Invalid("manifest: network_id is not a UUID".into()))?;
        let (keys, keys_path) = self.keys.entry(KEYS_FILE)?;
        if keys.lines != exported.account_keys {
            return Err(ArchiveError::Invalid(format!(
                "export sent {} account keys, its manifest says {}",
                keys.lines, exported.account_keys
            )));
        }
        let mut services = self.services;
        let mut entries = Vec::new();
        let mut paths = vec![(KEYS_FILE.to_owned(), keys_path)];
        for tally in &exported.services {
            let (file, path, last) = match services.remove(&tally.service) {
                Some(part) => {
                    let last = tally.last_event_id.clone();
                    let (file, path) = part.entry(&events_file(&tally.service))?;
                    (file, Some(path), last)
                }
                None => (
                    FileEntry {
                        file: events_file(&tally.service),
                        lines: 0,
                        sha256: hex(&Sha256::digest(b"")),
                    },
                    None,
                    tally.last_event_id.clone(),
                ),
            };
            if file.lines != tally.events {
                return Err(ArchiveError::Invalid(format!(
                    "export sent {} events of {}, its manifest says {}",
                    file.lines, tally.service, tally.events
                )));
            }
            if let Some(path) = path {
                paths.push((file.file.clone(), path));
            } else {
                let empty = self.dir.path().join(format!("empty-{}", tally.service));
                File::create(&empty)?;
                paths.push((file.file.clone(), empty));
            }
            entries.push(ServiceEntry {
                service: tally.service.clone(),
                last_event_id: last,
                file,
            });
        }
        if let Some(service) = services.keys().next() {
            return Err(ArchiveError::Invalid(format!(
                "export sent events of {service}, which its manifest does not list"
            )));
        }
        let manifest = Manifest {
            format: exported.format.clone(),
            network_id,
            network_slug: exported.network_slug.clone(),
            network_name: exported.network_name.clone(),
            exported_at: anp_kit::from_timestamp(exported.exported_at.as_ref()),
            services: entries,
            account_keys: keys,
        };
        let partial = out.with_extension("partial");
        {
            let file = private_file(&partial)?;
            let mut tar = tar::Builder::new(BufWriter::new(file));
            let json = serde_json::to_vec_pretty(&manifest)?;
            let mut header = tar_header(json.len() as u64, manifest.exported_at);
            tar.append_data(&mut header, MANIFEST_FILE, json.as_slice())?;
            for (name, path) in paths {
                let file = File::open(&path)?;
                let mut header = tar_header(file.metadata()?.len(), manifest.exported_at);
                tar.append_data(&mut header, &name, file)?;
            }
            tar.into_inner()?
                .into_inner()
                .map_err(|err| err.into_error())?
                .sync_all()?;
        }
        std::fs::rename(&partial, out)?;
        Ok(manifest)
    }
}

fn tar_header(size: u64, at: chrono::DateTime<chrono::Utc>) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(at.timestamp()).unwrap_or(0));
    header.set_cksum();
    header
}

fn private_file(path: &Path) -> Result<File, ArchiveError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    Ok(options.open(path)?)
}

/// Reads the manifest and checks every file against it (line counts and
/// SHA-256), reading the archive once; nothing is sent anywhere yet.
pub fn open(path: &Path) -> Result<Manifest, ArchiveError> {
    open_checked(path).map_err(|err| match err {
        ArchiveError::Io(io) if io.kind() != std::io::ErrorKind::NotFound => {
            ArchiveError::Invalid(format!(
                "{}: not a readable network archive (a tar whose first file is \
                 {MANIFEST_FILE}): {io}",
                path.display()
            ))
        }
        other => other,
    })
}

fn open_checked(path: &Path) -> Result<Manifest, ArchiveError> {
    let mut manifest: Option<Manifest> = None;
    let mut seen: BTreeMap<String, FileEntry> = BTreeMap::new();
    let mut archive = tar::Archive::new(File::open(path)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == MANIFEST_FILE {
            manifest = Some(read_manifest(&mut entry)?);
            continue;
        }
        let Some(_) = &manifest else {
            return Err(ArchiveError::Invalid(format!(
                "{name}: {MANIFEST_FILE} must be the archive's first file"
            )));
        };
        let mut hasher = Sha256::new();
        let mut lines = 0u64;
        let mut reader = BufReader::new(&mut entry);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(ArchiveError::Invalid(format!(
                    "{name}: line {} is longer than {MAX_LINE_BYTES} bytes",
                    lines + 1
                )));
            }
            hasher.update(&line);
            lines += 1;
        }
        seen.insert(
            name.clone(),
            FileEntry {
                file: name,
                lines,
                sha256: hex(&hasher.finalize()),
            },
        );
    }
    let manifest =
        manifest.ok_or_else(|| ArchiveError::Invalid(format!("{MANIFEST_FILE}: missing")))?;
    let listed = std::iter::once(&manifest.account_keys)
        .chain(manifest.services.iter().map(|service| &service.file));
    for expected in listed {
        match seen.get(&expected.file) {
            Some(found) if found == expected => {}
            Some(found) if found.lines != expected.lines => {
                return Err(ArchiveError::Invalid(format!(
                    "{}: {} lines, the manifest says {}",
                    expected.file, found.lines, expected.lines
                )));
            }
            Some(_) => {
                return Err(ArchiveError::Invalid(format!(
                    "{}: SHA-256 differs from the manifest's: the archive is damaged",
                    expected.file
                )));
            }
            None => {
                return Err(ArchiveError::Invalid(format!(
                    "{}: listed in the manifest but not in the archive",
                    expected.file
                )));
            }
        }
    }
    Ok(manifest)
}

fn read_manifest(entry: &mut impl Read) -> Result<Manifest, ArchiveError> {
    let mut json = Vec::new();
    entry.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut json)?;
    if json.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ArchiveError::Invalid(format!(
            "{MANIFEST_FILE}: larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|err| ArchiveError::Invalid(format!("{MANIFEST_FILE}: {err}")))?;
    if manifest.format != FORMAT {
        return Err(ArchiveError::Invalid(format!(
            "{MANIFEST_FILE}: format {:?} is not {FORMAT:?}",
            manifest.format
        )));
    }
    for service in &manifest.services {
        if service.file.file != events_file(&service.service) {
            return Err(ArchiveError::Invalid(format!(
                "{MANIFEST_FILE}: service {:?} has file {:?}",
                service.service, service.file.file
            )));
        }
    }
    Ok(manifest)
}

impl Manifest {
    /// The manifest as the import stream's first item.
    pub fn to_proto(&self) -> ArchiveManifest {
        ArchiveManifest {
            format: self.format.clone(),
            network_id: self.network_id.to_string(),
            network_slug: self.network_slug.clone(),
            network_name: self.network_name.clone(),
            exported_at: Some(anp_kit::timestamp(self.exported_at)),
            services: self
                .services
                .iter()
                .map(|service| ServiceTally {
                    service: service.service.clone(),
                    events: service.file.lines,
                    last_event_id: service.last_event_id.clone(),
                })
                .collect(),
            account_keys: self.account_keys.lines,
        }
    }
}

/// Calls `send` with every item of an archive already checked by [`open`]:
/// the manifest, the account keys, then each service's events.
pub fn for_each_item(
    path: &Path,
    manifest: &Manifest,
    mut send: impl FnMut(ArchiveItem) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    send(ArchiveItem {
        item: Some(Item::Manifest(manifest.to_proto())),
    })?;
    let mut archive = tar::Archive::new(File::open(path)?);
    // Keys first, whatever the tar's order: read them, then stream events.
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == KEYS_FILE {
            for (number, line) in BufReader::new(&mut entry).lines().enumerate() {
                let place = format!("{KEYS_FILE} line {}", number + 1);
                let key: KeyLine = serde_json::from_str(&line?)
                    .map_err(|err| ArchiveError::Invalid(format!("{place}: {err}")))?;
                send(ArchiveItem {
                    item: Some(Item::AccountKey(AccountKey {
                        account_id: key.account_id,
                        key: STANDARD.decode(&key.key).map_err(|err| {
                            ArchiveError::Invalid(format!("{place}: key is not base64: {err}"))
                        })?,
                    })),
                })?;
            }
        }
    }
    // Then each service's events, in the manifest's order.
    for service in &manifest.services {
        let mut archive = tar::Archive::new(File::open(path)?);
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path()?.to_string_lossy() != service.file.file {
                continue;
            }
            for (number, line) in BufReader::new(&mut entry).lines().enumerate() {
                let place = format!("{} line {}", service.file.file, number + 1);
                let event: EventLine = serde_json::from_str(&line?)
                    .map_err(|err| ArchiveError::Invalid(format!("{place}: {err}")))?;
                send(ArchiveItem {
                    item: Some(Item::Event(event.to_envelope(&service.service, &place)?)),
                })?;
            }
        }
    }
    Ok(())
}
