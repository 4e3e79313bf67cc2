//! The Tantivy search index: sites and posts, English and Spanish stemming
//! with accent folding. The JetStream sequence of the last applied event is
//! kept in the commit payload, so a redelivered event is applied once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::schema::{
    DateOptions, FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

use anp_markdown::html_plain_text;

use crate::events::{Delivered, Projected};
use crate::pairs::{CommonWords, Pairs, SharedCommonWords};
use crate::remembered::Remembered;
use crate::{AggregatorError, audience};

const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
/// Segments of fewer documents than this are one level of the merge policy
/// (Tantivy's default: 10,000). The projector commits a segment of a few
/// dozen documents up to ten times a second; with the default every
/// document was written again about twelve times before its segment left
/// the first level, and merging took as much CPU as indexing (decision
/// 0028).
const MERGE_FIRST_LEVEL_DOCS: u32 = 1_000;
/// The live writer's merge policy (see `MERGE_FIRST_LEVEL_DOCS`).
fn live_merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_layer_size(MERGE_FIRST_LEVEL_DOCS);
    policy
}
/// A search visits every segment in turn, and some of its cost is paid
/// again in each (looking its terms up, setting up its scorers and
/// collectors): once the index is at rest it keeps at most this many
/// (decision 0032).
const SEGMENTS_AT_REST: usize = 8;
/// Nothing committed for this long: the index is at rest.
const AT_REST_AFTER: Duration = Duration::from_secs(10);
/// A rebuild's writer: a thread a core, and large segments, unmerged until
/// the rebuild is done (merging while building rewrites every document
/// several times). 256 MB a thread rather than more: a segment's term hash
/// table then stays small enough to be cheap to insert into.
const BULK_THREADS: usize = 2;
const BULK_HEAP_BYTES: usize = 256 * 1024 * 1024;
/// The analyzers' names carry their version: a change of how text is
/// analyzed changes the schema, and an index of another schema is rebuilt.
const TOKENIZER_EN: &str = "anp_en_4";
const TOKENIZER_ES: &str = "anp_es_4";
const TOKENIZER_PLAIN: &str = "anp_plain_2";
/// The kind of a document that only remembers a post's version.
pub(crate) const TOMBSTONE: &str = "tombstone";
/// Most tags of a document that are indexed.
const TAGS_MAX: usize = 20;

/// A number unique to a document id (64 bits of its SHA-256), stable across
/// versions: equal dates are ordered by it.
pub(crate) fn uid(id: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

pub(crate) fn tantivy_date(at: chrono::DateTime<chrono::Utc>) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(at.timestamp_micros())
}

/// A post, page or discussion thread as the index holds it.
struct TextDoc<'a> {
    id: String,
    kind: &'static str,
    visible: bool,
    /// public, network or site.
    visibility: &'a str,
    site_id: &'a str,
    tags: &'a [String],
    network_id: &'a str,
    network_slug: &'a str,
    site_slug: &'a str,
    site_name: &'a str,
    lang: &'a str,
    title: &'a str,
    body_html: &'a str,
    /// Shown as the hit's date.
    at: Option<&'a prost_types::Timestamp>,
}

/// A batch's documents built ahead of adding them (`SearchIndex::prepare`),
/// one slot an event.
pub struct Prepared {
    /// The generation they were built for (its common words).
    dir: PathBuf,
    docs: Vec<Option<TantivyDocument>>,
}

impl Prepared {
    fn take(&mut self, n: usize) -> Option<TantivyDocument> {
        self.docs.get_mut(n).and_then(Option::take)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    pub kind: Field,
    pub network_id: Field,
    pub network_slug: Field,
    pub site_slug: Field,
    pub site_name: Field,
    /// `<network slug>/<site slug>`: filters and counts a site.
    pub site_key: Field,
    pub lang: Field,
    pub tags: Field,
    /// Who may read it (see `audience`); tombstones have none.
    pub audience: Field,
    /// public, network or site; shown on hits.
    pub visibility: Field,
    /// A number unique to the document, for a stable order among equal
    /// dates.
    pub uid: Field,
    pub title_en: Field,
    pub body_en: Field,
    pub title_es: Field,
    pub body_es: Field,
    /// Other languages: words lowercased and accents folded, not stemmed.
    pub title_plain: Field,
    pub body_plain: Field,
    /// The version of the common words a document was paired by (see
    /// `pairs`); 0: none.
    pub pairs_list: Field,
    pub published_at: Field,
    pub version: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |tokenizer: &str| {
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored()
    };
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        kind: builder.add_text_field("kind", STRING | STORED | FAST),
        network_id: builder.add_text_field("network_id", STRING | STORED),
        network_slug: builder.add_text_field("network_slug", STRING | STORED | FAST),
        site_slug: builder.add_text_field("site_slug", STORED),
        site_name: builder.add_text_field("site_name", STORED),
        site_key: builder.add_text_field("site_key", STRING | FAST),
        lang: builder.add_text_field("lang", STRING | STORED | FAST),
        tags: builder.add_text_field("tags", STRING | STORED | FAST),
        audience: builder.add_text_field("audience", STRING),
        visibility: builder.add_text_field("visibility", STORED),
        uid: builder.add_u64_field("uid", FAST),
        title_en: builder.add_text_field("title_en", text(TOKENIZER_EN)),
        body_en: builder.add_text_field("body_en", text(TOKENIZER_EN)),
        title_es: builder.add_text_field("title_es", text(TOKENIZER_ES)),
        body_es: builder.add_text_field("body_es", text(TOKENIZER_ES)),
        title_plain: builder.add_text_field("title_plain", text(TOKENIZER_PLAIN)),
        body_plain: builder.add_text_field("body_plain", text(TOKENIZER_PLAIN)),
        pairs_list: builder.add_u64_field("pairs_list", INDEXED),
        published_at: builder.add_date_field(
            "published_at",
            // Microseconds: "newest first" orders posts of the same second.
            DateOptions::default()
                .set_stored()
                .set_fast()
                .set_precision(tantivy::schema::DateTimePrecision::Microseconds),
        ),
        // Fast: a redelivered event's version is checked without reading
        // the stored document.
        version: builder.add_u64_field("version", STORED | FAST),
    };
    (builder.build(), fields)
}

/// Languages without a stemmer here: words, lowercased, accents folded;
/// then pairs of common words.
fn plain_analyzer(common: &SharedCommonWords) -> TextAnalyzer {
    plain_builder()
        .filter(Pairs::new(common.clone(), 2))
        .build()
}

fn plain_builder() -> tantivy::tokenizer::TextAnalyzerBuilder<impl Tokenizer> {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
}

impl Fields {
    /// Every field searched, titles first in each language.
    pub fn text(&self) -> [Field; 6] {
        [
            self.title_en,
            self.body_en,
            self.title_es,
            self.body_es,
            self.title_plain,
            self.body_plain,
        ]
    }

    /// The title and body fields of a language: English (also the default),
    /// Spanish, or plain for the others.
    pub fn for_lang(&self, lang: &str) -> (Field, Field) {
        self.languages()[Self::language(lang)]
    }

    /// The slot of a language in `languages`.
    pub fn language(lang: &str) -> usize {
        match lang {
            "" | "en" => 0,
            "es" => 1,
            _ => 2,
        }
    }

    /// Title and body fields of each analyzed language: English, Spanish,
    /// plain.
    pub fn languages(&self) -> [(Field, Field); 3] {
        [
            (self.title_en, self.body_en),
            (self.title_es, self.body_es),
            (self.title_plain, self.body_plain),
        ]
    }
}

/// The analyzer of a language's fields: its words (see `analyzer_remembering`),
/// then pairs of common words (see `pairs`).
fn analyzer(language: Language, common: &SharedCommonWords) -> TextAnalyzer {
    analyzer_remembering(language, common, Remembered::new(word_analyzer(language)))
}

/// The same analysis as `analyzer`, its copies sharing what they remember:
/// for snippets, which Tantivy analyzes with a new copy each.
fn snippet_analyzer(language: Language, common: &SharedCommonWords) -> TextAnalyzer {
    analyzer_remembering(
        language,
        common,
        Remembered::shared(word_analyzer(language)),
    )
}

fn analyzer_remembering(
    language: Language,
    common: &SharedCommonWords,
    remembered: Remembered,
) -> TextAnalyzer {
    let slot = match language {
        Language::Spanish => 1,
        _ => 0,
    };
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        // What each word becomes, remembered.
        .filter(remembered)
        .filter(Pairs::new(common.clone(), slot))
        .build()
}

/// What one word of `language` becomes: lowercased, stemmed, accents
/// folded.
fn word_analyzer(language: Language) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        // People often type Spanish without accents; the stemmer's `-ción`
        // and `-sión` need theirs back to find `organización` from
        // `organizacion`.
        .filter(SpanishSuffixAccents {
            active: language == Language::Spanish,
        })
        // Stem before folding: other Spanish suffixes carry accents too.
        .filter(Stemmer::new(language))
        .filter(AsciiFoldingFilter)
        .build()
}

/// Puts the accent back on a trailing `-cion`/`-sion` (`-ciones` needs
/// none), so the Spanish stemmer treats accented and unaccented words alike.
#[derive(Clone, Copy)]
struct SpanishSuffixAccents {
    active: bool,
}

impl TokenFilter for SpanishSuffixAccents {
    type Tokenizer<T: Tokenizer> = SpanishSuffixAccentsWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> SpanishSuffixAccentsWrapper<T> {
        SpanishSuffixAccentsWrapper {
            active: self.active,
            inner: tokenizer,
        }
    }
}

#[derive(Clone)]
struct SpanishSuffixAccentsWrapper<T> {
    active: bool,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for SpanishSuffixAccentsWrapper<T> {
    type TokenStream<'a> = SpanishSuffixAccentsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        SpanishSuffixAccentsStream {
            active: self.active,
            tail: self.inner.token_stream(text),
        }
    }
}

struct SpanishSuffixAccentsStream<T> {
    active: bool,
    tail: T,
}

impl<T: TokenStream> TokenStream for SpanishSuffixAccentsStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        if self.active {
            let text = &mut self.tail.token_mut().text;
            for (plain, accented) in [("cion", "ción"), ("sion", "sión")] {
                if text.len() > plain.len() + 2 && text.ends_with(plain) {
                    text.truncate(text.len() - plain.len());
                    text.push_str(accented);
                    break;
                }
            }
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// The file under the index root naming the current generation.
const CURRENT: &str = "CURRENT";

/// Names `generation` as current, atomically (a rename).
fn write_current(root: &Path, generation: &str) -> Result<(), AggregatorError> {
    let io = |err: std::io::Error| AggregatorError::Index(format!("{}: {err}", root.display()));
    let temporary = root.join("CURRENT.next");
    std::fs::write(&temporary, generation).map_err(io)?;
    std::fs::rename(&temporary, root.join(CURRENT)).map_err(io)
}

/// The index the service reads and writes now; a rebuild swaps in another.
#[derive(Clone)]
pub struct IndexHandle {
    root: PathBuf,
    current: Arc<RwLock<(SearchIndex, String)>>,
}

impl IndexHandle {
    pub fn new(root: &Path, index: SearchIndex) -> Self {
        let generation = std::fs::read_to_string(root.join(CURRENT))
            .map(|name| name.trim().to_owned())
            .unwrap_or_default();
        IndexHandle {
            root: root.to_path_buf(),
            current: Arc::new(RwLock::new((index, generation))),
        }
    }

    pub fn current(&self) -> SearchIndex {
        match self.current.read() {
            Ok(current) => current.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes `index` (generation `generation`) current and deletes the old
    /// generation's files; searches running on the old one finish on it.
    pub fn swap(&self, index: SearchIndex, generation: String) -> Result<(), AggregatorError> {
        write_current(&self.root, &generation)?;
        let old = {
            let mut current = self
                .current
                .write()
                .map_err(|_| AggregatorError::Index("index handle lock poisoned".into()))?;
            std::mem::replace(&mut *current, (index, generation))
        };
        // Its merges may still be writing files: they end first.
        if let Err(err) = old.0.retire() {
            tracing::warn!(error = %err, "old index generation's merges did not end cleanly");
        }
        if !old.1.is_empty() {
            let dir = self.root.join(&old.1);
            if let Err(err) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %err, "old index generation not deleted");
            }
        }
        Ok(())
    }
}

/// The search index and its single writer.
#[derive(Clone)]
pub struct SearchIndex {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    /// None once retired (after a rebuild swapped another index in).
    writer: Arc<Mutex<Option<IndexWriter>>>,
    /// Documents were added since the last commit.
    uncommitted: Arc<std::sync::atomic::AtomicBool>,
    /// When the index was last committed (or opened).
    last_commit: Arc<Mutex<Instant>>,
    /// A merge at rest is running (see `tend`).
    settling: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) fields: Fields,
    /// The generation's directory.
    dir: PathBuf,
    /// Whose pairs are indexed (see `pairs`); shared with the analyzers.
    common: SharedCommonWords,
    /// The analyzers of snippets, by language (`Fields::languages`'s
    /// order): each shares what its copies remember across searches.
    pub(crate) snippet_analyzers: Arc<[TextAnalyzer; 3]>,
    /// Searchers kept for cursors over relevance.
    pub(crate) snapshots: crate::search::Snapshots,
    /// Facet values numbered across segments (see `facets`).
    pub(crate) facet_values: Arc<crate::facets::FacetValues>,
}

impl SearchIndex {
    /// Opens the current generation of the index under `root` (named by
    /// `root/CURRENT`), creating it when missing. An index of another schema
    /// (an older version) is deleted and created empty; `rebuilt` says so,
    /// and the consumer then replays the bus into it.
    pub fn open(root: &Path) -> Result<(Self, bool), AggregatorError> {
        let io = |err: std::io::Error| AggregatorError::Index(format!("{}: {err}", root.display()));
        std::fs::create_dir_all(root).map_err(io)?;
        // An index of before generations lay in the root itself.
        let mut rebuilt = false;
        if root.join("meta.json").exists() {
            tracing::warn!(dir = %root.display(), "search index of an older layout: rebuilding it from the bus");
            for entry in std::fs::read_dir(root).map_err(io)?.flatten() {
                if entry.file_type().map_err(io)?.is_file() {
                    std::fs::remove_file(entry.path()).map_err(io)?;
                }
            }
            rebuilt = true;
        }
        let generation = std::fs::read_to_string(root.join(CURRENT))
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| name.starts_with("gen-") && !name.contains('/'))
            .unwrap_or_else(|| "gen-1".to_owned());
        let (index, other_schema) = Self::open_dir(&root.join(&generation))?;
        write_current(root, &generation)?;
        // A rebuild the process did not live to finish left its generation
        // beside the current one: nothing will ever use it.
        for entry in std::fs::read_dir(root).map_err(io)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("gen-") && name != generation && entry.path().is_dir() {
                tracing::warn!(generation = %name, "deleting a search index generation an unfinished rebuild left");
                if let Err(err) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(generation = %name, error = %err, "could not delete it");
                }
            }
        }
        Ok((index, rebuilt || other_schema))
    }

    /// A new, empty generation under `root` beside the current one, for a
    /// rebuild; `IndexHandle::swap` makes it current. Its common words are
    /// learned from `current` when that is large enough (see `pairs`).
    pub fn create_next(
        root: &Path,
        current: Option<&SearchIndex>,
    ) -> Result<(Self, String), AggregatorError> {
        let generation = format!("gen-{}", chrono::Utc::now().timestamp_micros());
        let (index, _) = Self::open_dir(&root.join(&generation))?;
        if let Some(current) = current {
            let searcher = current.reader.searcher();
            if CommonWords::default().due(searcher.num_docs()) {
                let bodies = current.fields.languages().map(|(_, body)| body);
                let learned = CommonWords::default().learned(&searcher, bodies)?;
                learned.save(&index.dir)?;
                *index
                    .common
                    .write()
                    .map_err(|_| AggregatorError::Index("common words lock poisoned".into()))? =
                    Arc::new(learned);
            }
        }
        {
            let mut guard = index.writer()?;
            drop(guard.take());
            let writer = index
                .index
                .writer_with_num_threads(BULK_THREADS, BULK_HEAP_BYTES)?;
            writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            *guard = Some(writer);
        }
        Ok((index, generation))
    }

    /// After a rebuild's last commit: the usual writer again (one thread,
    /// merging its segments). Blocking.
    pub fn end_bulk(&self) -> Result<(), AggregatorError> {
        let mut guard = self.writer()?;
        if let Some(bulk) = guard.take() {
            bulk.wait_merging_threads()?;
        }
        *guard = Some(Self::live_writer(&self.index)?);
        Ok(())
    }

    /// The projector's writer: one thread, its segments merged by size
    /// levels whose first holds segments under `MERGE_FIRST_LEVEL_DOCS`.
    fn live_writer(index: &Index) -> Result<IndexWriter, AggregatorError> {
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        writer.set_merge_policy(Box::new(live_merge_policy()));
        Ok(writer)
    }

    fn open_dir(dir: &Path) -> Result<(Self, bool), AggregatorError> {
        let io = |err: std::io::Error| AggregatorError::Index(format!("{}: {err}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let (schema, fields) = schema();
        let open = || -> Result<Index, AggregatorError> {
            let directory = tantivy::directory::MmapDirectory::open(dir)
                .map_err(|err| AggregatorError::Index(err.to_string()))?;
            Ok(Index::open_or_create(directory, schema.clone())?)
        };
        let (mut index, mut rebuilt) = match open() {
            Ok(index) => (index, false),
            Err(AggregatorError::Tantivy(tantivy::TantivyError::SchemaError(message))) => {
                tracing::warn!(dir = %dir.display(), %message, "search index of another version: rebuilding it from the bus");
                std::fs::remove_dir_all(dir).map_err(io)?;
                std::fs::create_dir_all(dir).map_err(io)?;
                (open()?, true)
            }
            Err(other) => return Err(other),
        };
        // Documents paired by common words the index no longer knows (the
        // list lost or unreadable) hold pairs another list would take for
        // its own: the index is rebuilt.
        let common = match CommonWords::load(dir) {
            Ok(common) if !Self::paired_beyond(&index, fields, common.version)? => common,
            outcome => {
                let error = outcome.err().map(|err| err.to_string()).unwrap_or_default();
                tracing::warn!(dir = %dir.display(), %error, "search index without its common words: rebuilding it from the bus");
                drop(index);
                std::fs::remove_dir_all(dir).map_err(io)?;
                std::fs::create_dir_all(dir).map_err(io)?;
                index = open()?;
                rebuilt = true;
                CommonWords::default()
            }
        };
        let common: SharedCommonWords = Arc::new(RwLock::new(Arc::new(common)));
        index
            .tokenizers()
            .register(TOKENIZER_EN, analyzer(Language::English, &common));
        index
            .tokenizers()
            .register(TOKENIZER_ES, analyzer(Language::Spanish, &common));
        index
            .tokenizers()
            .register(TOKENIZER_PLAIN, plain_analyzer(&common));
        let snippet_analyzers = Arc::new([
            snippet_analyzer(Language::English, &common),
            snippet_analyzer(Language::Spanish, &common),
            plain_analyzer(&common),
        ]);
        let writer = Self::live_writer(&index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            SearchIndex {
                index,
                reader,
                writer: Arc::new(Mutex::new(Some(writer))),
                uncommitted: Arc::default(),
                last_commit: Arc::new(Mutex::new(Instant::now())),
                settling: Arc::default(),
                dir: dir.to_path_buf(),
                common,
                snippet_analyzers,
                fields,
                snapshots: crate::search::Snapshots::default(),
                facet_values: Default::default(),
            },
            rebuilt,
        ))
    }

    /// Whether documents of `index` were paired by a version of the common
    /// words after `version` (versions follow each other).
    fn paired_beyond(index: &Index, fields: Fields, version: u64) -> Result<bool, AggregatorError> {
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let next = Term::from_field_u64(fields.pairs_list, version + 1);
        Ok(reader.searcher().doc_freq(&next)? > 0)
    }

    /// Documents in the committed index (tombstones included).
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The segments a search visits now (each is searched in turn; merges
    /// make them fewer).
    pub fn segments(&self) -> u64 {
        self.reader.searcher().segment_readers().len() as u64
    }

    /// Tends the index between writes (blocking). A searcher that still
    /// shows segments merged since the last commit is reloaded, so searches
    /// visit the merged segment and the old files can go. Once nothing was
    /// committed for `AT_REST_AFTER`, the smallest segments are merged into
    /// one so that at most `SEGMENTS_AT_REST` remain. Returns whether such
    /// a merge was started.
    pub fn tend(&self) -> Result<bool, AggregatorError> {
        self.tend_with(AT_REST_AFTER, SEGMENTS_AT_REST)
    }

    fn tend_with(&self, at_rest_after: Duration, at_rest: usize) -> Result<bool, AggregatorError> {
        use std::sync::atomic::Ordering;
        let metas = self.index.searchable_segment_metas()?;
        let searched: std::collections::HashSet<_> = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|segment| segment.segment_id())
            .collect();
        if metas.len() != searched.len() || metas.iter().any(|meta| !searched.contains(&meta.id()))
        {
            self.reader.reload()?;
        }
        let resting = self
            .last_commit
            .lock()
            .map(|last_commit| last_commit.elapsed() >= at_rest_after)
            .unwrap_or(false);
        if !resting || self.settling.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let merged = merge_at_rest(&metas, at_rest);
        if merged.is_empty() {
            return Ok(false);
        }
        let future = {
            let mut writer = self.writer()?;
            let Some(writer) = writer.as_mut() else {
                return Ok(false);
            };
            writer.merge(&merged)
        };
        self.settling.store(true, Ordering::SeqCst);
        let settling = self.settling.clone();
        let reader = self.reader.clone();
        let segments = merged.len();
        let waiting = std::thread::Builder::new()
            .name("index-at-rest".into())
            .spawn(move || {
                let started = Instant::now();
                match future.wait() {
                    Ok(_) => match reader.reload() {
                        Ok(()) => tracing::info!(
                            segments,
                            seconds = started.elapsed().as_secs_f64(),
                            "segments merged at rest"
                        ),
                        Err(err) => tracing::warn!(error = %err, "reloading after a merge failed"),
                    },
                    // Some may be in another merge: the next turn tries again.
                    Err(err) => tracing::debug!(error = %err, "merge at rest not done"),
                }
                settling.store(false, Ordering::SeqCst);
            });
        if let Err(err) = waiting {
            self.settling.store(false, Ordering::SeqCst);
            return Err(AggregatorError::Index(format!("merge at rest: {err}")));
        }
        Ok(true)
    }

    /// The sequence of the last event in the committed index.
    pub fn checkpoint(&self) -> Result<u64, AggregatorError> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .and_then(|payload| payload.parse().ok())
            .unwrap_or(0))
    }

    fn stored_version(&self, id: &str) -> Result<Option<u64>, AggregatorError> {
        use tantivy::DocSet;
        let searcher = self.reader.searcher();
        let term = Term::from_field_text(self.fields.id, id);
        for segment in searcher.segment_readers() {
            let Some(mut postings) = segment
                .inverted_index(self.fields.id)?
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|err| AggregatorError::Index(err.to_string()))?
            else {
                continue;
            };
            let versions = segment.fast_fields().u64("version")?;
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED {
                if !segment.is_deleted(doc) {
                    return Ok(versions.first(doc));
                }
                doc = postings.advance();
            }
        }
        Ok(None)
    }

    /// Puts a post, page or thread in the index at `version`, unless a
    /// version as new is there already. One that is not (or no longer)
    /// visible leaves a document without text that keeps its version, so an
    /// older event seen later cannot bring it back.
    fn put_text(
        &self,
        writer: &mut IndexWriter,
        pending: &mut HashMap<String, u64>,
        fresh: bool,
        doc: TextDoc<'_>,
        version: u64,
        built: Option<TantivyDocument>,
    ) -> Result<(), AggregatorError> {
        let fields = self.fields;
        let known = match pending.get(&doc.id) {
            Some(version) => Some(*version),
            None if fresh => None,
            None => self.stored_version(&doc.id)?,
        };
        if known.is_some_and(|known| known >= version) {
            return Ok(());
        }
        pending.insert(doc.id.clone(), version);
        // Nothing to replace when the id was never indexed (most posts):
        // a delete would be looked up in every segment at the commit.
        if known.is_some() {
            writer.delete_term(Term::from_field_text(fields.id, &doc.id));
        }
        if !doc.visible {
            writer.add_document(doc!(
                fields.id => doc.id,
                fields.kind => TOMBSTONE,
                fields.network_id => doc.network_id.to_owned(),
                fields.version => version,
            ))?;
            return Ok(());
        }
        let document = match built {
            Some(document) => document,
            None => self.build_text(&doc, version),
        };
        writer.add_document(document)?;
        Ok(())
    }

    /// The document of a visible post, thread or page: its text cleaned of
    /// HTML, analyzed for its pairs of common words, its filters and facets.
    fn build_text(&self, doc: &TextDoc<'_>, version: u64) -> TantivyDocument {
        let fields = self.fields;
        let (title_field, body_field) = fields.for_lang(doc.lang);
        let body_text = html_plain_text(doc.body_html);
        let at = anp_kit::from_timestamp(doc.at);
        let visibility = match doc.visibility {
            "" => "public",
            other => other,
        };
        let document = doc!(
            fields.uid => uid(&doc.id),
            fields.id => doc.id.clone(),
            fields.kind => doc.kind,
            fields.network_id => doc.network_id.to_owned(),
            fields.network_slug => doc.network_slug.to_owned(),
            fields.site_slug => doc.site_slug.to_owned(),
            fields.site_name => doc.site_name.to_owned(),
            fields.lang => doc.lang.to_owned(),
            fields.visibility => visibility,
            title_field => doc.title.to_owned(),
            body_field => body_text.clone(),
            fields.published_at => tantivy::DateTime::from_timestamp_micros(at.timestamp_micros()),
            fields.version => version,
        );
        let mut document = self.paired(document);
        if !doc.site_slug.is_empty() {
            document.add_text(
                fields.site_key,
                format!("{}/{}", doc.network_slug, doc.site_slug),
            );
        }
        for tag in doc.tags.iter().take(TAGS_MAX) {
            document.add_text(fields.tags, tag);
        }
        for token in audience::of_document(visibility, doc.network_id, doc.site_id) {
            document.add_text(fields.audience, token);
        }
        document
    }

    /// Builds the documents of a batch's visible posts, threads and pages
    /// ahead of `add` — while the writer is still busy with earlier batches.
    /// Whether each is added is decided by `add` (its version).
    pub fn prepare(&self, batch: &[Delivered]) -> Prepared {
        Prepared {
            dir: self.dir.clone(),
            docs: batch
                .iter()
                .map(|delivered| {
                    text_doc(delivered)
                        .filter(|(doc, _)| doc.visible)
                        .map(|(doc, version)| self.build_text(&doc, version))
                })
                .collect(),
        }
    }

    /// `document` with the version of the common words it is paired by
    /// (see `pairs`): the analyzers add the pairs as it is indexed, by the
    /// words common then — this version or a later one, as the list only
    /// grows, so a document never holds fewer pairs than it says.
    fn paired(&self, mut document: TantivyDocument) -> TantivyDocument {
        document.add_u64(self.fields.pairs_list, self.common_words().version);
        document
    }

    /// The common words documents are paired by now.
    pub fn common_words(&self) -> Arc<CommonWords> {
        match self.common.read() {
            Ok(common) => common.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Learns the common words again if the index has grown enough since
    /// (see `pairs`): saved first, then used by the documents to come.
    fn learn_if_due(&self) -> Result<(), AggregatorError> {
        let common = self.common_words();
        let searcher = self.reader.searcher();
        if !common.due(searcher.num_docs()) {
            return Ok(());
        }
        let bodies = self.fields.languages().map(|(_, body)| body);
        let learned = common.learned(&searcher, bodies)?;
        learned.save(&self.dir)?;
        tracing::info!(
            version = learned.version,
            documents = learned.learned_at,
            english = learned.languages[0].len(),
            spanish = learned.languages[1].len(),
            plain = learned.languages[2].len(),
            "common words learned"
        );
        let learned = Arc::new(learned);
        match self.common.write() {
            Ok(mut common) => *common = learned,
            Err(poisoned) => *poisoned.into_inner() = learned,
        }
        Ok(())
    }

    /// Puts a calendar event's occurrences from a day before `now` to
    /// `HORIZON_DAYS` after in the index (one document each,
    /// `event:<id>@<original start>`), replacing those of an older version
    /// (or of the same one, `again`: its horizon rolls); a marker
    /// `event:<id>` keeps the version.
    #[allow(clippy::too_many_arguments)]
    fn put_event(
        &self,
        writer: &mut IndexWriter,
        pending: &mut HashMap<String, u64>,
        fresh: bool,
        state: &anp_proto::events::v1::CalendarEventState,
        version: u64,
        now: chrono::DateTime<chrono::Utc>,
        again: bool,
    ) -> Result<(), AggregatorError> {
        let fields = self.fields;
        let marker = format!("event:{}", state.event_id);
        if state.event_id.parse::<uuid::Uuid>().is_err() {
            return Ok(());
        }
        let known = match pending.get(&marker) {
            Some(version) => Some(*version),
            None if fresh => None,
            None => self.stored_version(&marker)?,
        };
        if known.is_some_and(|known| known > version || (known == version && !again)) {
            return Ok(());
        }
        pending.insert(marker.clone(), version);
        writer.delete_term(Term::from_field_text(fields.id, &marker));
        let occurrences = tantivy::query::RegexQuery::from_pattern(
            &format!("event:{}@.*", state.event_id),
            fields.id,
        )?;
        writer.delete_query(Box::new(occurrences))?;
        writer.add_document(doc!(
            fields.id => marker,
            fields.kind => TOMBSTONE,
            fields.network_id => state.network_id.clone(),
            fields.version => version,
        ))?;
        if state.status == "cancelled" {
            return Ok(());
        }
        let Ok(occurrences) = anp_calendar::state::schedule_of(state).and_then(|schedule| {
            schedule.occurrences(
                now - chrono::Duration::days(1),
                now + chrono::Duration::days(crate::upcoming::HORIZON_DAYS),
            )
        }) else {
            return Ok(());
        };
        let location = state
            .location
            .as_ref()
            .map(|l| format!("{} {}", l.venue, l.address))
            .unwrap_or_default();
        let body = format!("{} {}", html_plain_text(&state.description_html), location);
        for occurrence in occurrences.iter().filter(|o| !o.cancelled).take(200) {
            // Events have no language of their own: both analyzers see them.
            let id = format!(
                "event:{}@{}",
                state.event_id,
                anp_calendar::state::local_text(occurrence.original)
            );
            let document = doc!(
                fields.uid => uid(&id),
                fields.id => id,
                fields.kind => "event",
                fields.visibility => "public",
                fields.audience => audience::PUBLIC,
                fields.site_key => format!("{}/{}", state.network_slug, state.site_slug),
                fields.network_id => state.network_id.clone(),
                fields.network_slug => state.network_slug.clone(),
                fields.site_slug => state.site_slug.clone(),
                fields.lang => "",
                fields.title_en => state.title.clone(),
                fields.title_es => state.title.clone(),
                fields.body_en => body.clone(),
                fields.body_es => body.clone(),
                fields.published_at => tantivy_date(occurrence.start),
                fields.version => version,
            );
            writer.add_document(self.paired(document))?;
        }
        Ok(())
    }

    /// Applies a batch and commits it, with the highest sequence seen as the
    /// commit payload. A post is only replaced by a higher version, so a
    /// redelivered or reordered event changes nothing. Blocking: call it from
    /// a blocking task.
    pub fn apply(&self, batch: &[Delivered]) -> Result<(), AggregatorError> {
        let mut pending = HashMap::new();
        if let Some(seq) = self.add(batch, None, &mut pending)? {
            self.commit_after(seq)?;
        }
        Ok(())
    }

    /// Adds a batch without committing it; `pending` holds the versions
    /// added since the last commit (shared by the batches one commit
    /// covers). The batch's highest sequence, if it has events.
    pub fn add(
        &self,
        batch: &[Delivered],
        prepared: Option<Prepared>,
        pending: &mut HashMap<String, u64>,
    ) -> Result<Option<u64>, AggregatorError> {
        let Some(batch_seq) = batch.iter().map(|delivered| delivered.seq).max() else {
            return Ok(None);
        };
        let mut guard = self.writer()?;
        let writer = live(&mut guard)?;
        self.uncommitted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.add_all(writer, batch, pending, false, prepared)?;
        Ok(Some(batch_seq))
    }

    /// Puts calendar events' occurrences in the index again, a year ahead
    /// of `now`, unless a newer version of the event is there, and commits
    /// (the bus checkpoint stays): a series nobody edits keeps upcoming
    /// occurrences in search. Only while no batch is being added (the read
    /// model's `applying` lock). Blocking.
    pub fn roll_events(
        &self,
        events: &[(anp_proto::events::v1::CalendarEventState, u64)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AggregatorError> {
        self.discard_uncommitted()?;
        let checkpoint = self.checkpoint()?;
        let mut guard = self.writer()?;
        let writer = live(&mut guard)?;
        self.uncommitted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut pending = HashMap::new();
        for (state, version) in events {
            self.put_event(writer, &mut pending, false, state, *version, now, true)?;
        }
        self.commit_with(writer, checkpoint)
    }

    /// Drops what was added and never committed (a worker stopped between
    /// adding and committing): those events come again from the bus, and
    /// committing both would index them twice. Blocking.
    pub fn discard_uncommitted(&self) -> Result<(), AggregatorError> {
        if !self
            .uncommitted
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let mut guard = self.writer()?;
        if let Some(writer) = guard.as_mut() {
            writer.rollback()?;
        }
        Ok(())
    }

    /// Commits what was added, with `seq` as the checkpoint unless the
    /// index is further already (a redelivery).
    pub fn commit_after(&self, seq: u64) -> Result<(), AggregatorError> {
        let seq = seq.max(self.checkpoint()?);
        self.commit_at(seq)
    }

    /// Adds a batch of a rebuild to a new index without committing it: the
    /// events come in their stores' order, so `versions` (kept across
    /// batches) knows every document's version without looking it up.
    pub fn add_fresh(
        &self,
        batch: &[Delivered],
        versions: &mut HashMap<String, u64>,
    ) -> Result<(), AggregatorError> {
        let mut guard = self.writer()?;
        let writer = live(&mut guard)?;
        self.add_all(writer, batch, versions, true, None)
    }

    /// Commits what was added, with `seq` (the bus sequence it covers) as
    /// the checkpoint.
    pub fn commit_at(&self, seq: u64) -> Result<(), AggregatorError> {
        let mut guard = self.writer()?;
        let writer = live(&mut guard)?;
        self.commit_with(writer, seq)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Option<IndexWriter>>, AggregatorError> {
        self.writer
            .lock()
            .map_err(|_| AggregatorError::Index("index writer lock poisoned".into()))
    }

    /// Stops writing to this index: waits for its merges to finish, so that
    /// its files can be deleted. Blocking.
    pub fn retire(&self) -> Result<(), AggregatorError> {
        let writer = self.writer()?.take();
        if let Some(writer) = writer {
            writer.wait_merging_threads()?;
        }
        Ok(())
    }

    fn commit_with(&self, writer: &mut IndexWriter, seq: u64) -> Result<(), AggregatorError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&seq.to_string());
        prepared.commit()?;
        self.uncommitted
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut last_commit) = self.last_commit.lock() {
            *last_commit = Instant::now();
        }
        self.reader.reload()?;
        self.learn_if_due()
    }

    fn add_all(
        &self,
        writer: &mut IndexWriter,
        batch: &[Delivered],
        pending_versions: &mut HashMap<String, u64>,
        fresh: bool,
        mut prepared: Option<Prepared>,
    ) -> Result<(), AggregatorError> {
        let fields = self.fields;
        if prepared
            .as_ref()
            .is_some_and(|prepared| prepared.dir != self.dir || prepared.docs.len() != batch.len())
        {
            // Built for another generation (a rebuild swapped in since).
            prepared = None;
        }
        for (n, delivered) in batch.iter().enumerate() {
            match &delivered.event {
                Projected::NetworkOffboarded { network_id, .. } => {
                    // Deletes every document of the network added before it.
                    writer.delete_term(Term::from_field_text(
                        fields.network_id,
                        &network_id.to_string(),
                    ));
                }
                Projected::Site(site) => {
                    let id = format!("site:{}", site.site_id);
                    writer.delete_term(Term::from_field_text(fields.id, &id));
                    let document = doc!(
                        fields.uid => uid(&id),
                        fields.id => id,
                        fields.kind => "site",
                        fields.visibility => "public",
                        fields.audience => audience::PUBLIC,
                        fields.site_key => format!("{}/{}", site.network_slug, site.slug),
                        fields.network_id => site.network_id.clone(),
                        fields.network_slug => site.network_slug.clone(),
                        fields.site_slug => site.slug.clone(),
                        fields.site_name => site.name.clone(),
                        fields.lang => "en",
                        fields.title_en => site.name.clone(),
                        fields.title_es => site.name.clone(),
                        fields.version => 1u64,
                    );
                    writer.add_document(self.paired(document))?;
                }
                Projected::Post { .. } | Projected::Thread { .. } | Projected::Page { .. } => {
                    if let Some((doc, version)) = text_doc(delivered) {
                        let built = prepared.as_mut().and_then(|prepared| prepared.take(n));
                        self.put_text(writer, pending_versions, fresh, doc, version, built)?;
                    }
                }
                Projected::CalendarEvent { state, version } => {
                    let now = chrono::Utc::now();
                    self.put_event(writer, pending_versions, fresh, state, *version, now, false)?;
                }
                // Site hits keep the slug they were indexed with; old slugs still
                // lead to the site.
                Projected::SiteRenamed { .. } | Projected::Ignored => {}
            }
        }
        Ok(())
    }
}

/// The writer of an index still in use (a rebuild's swap retires it).
/// The segments to merge into one so that at most `at_rest` remain: the
/// smallest (mostly the newest), which costs the least to write again.
/// None when there are no more than that.
fn merge_at_rest(segments: &[SegmentMeta], at_rest: usize) -> Vec<SegmentId> {
    if segments.len() <= at_rest.max(1) {
        return Vec::new();
    }
    let mut by_size: Vec<&SegmentMeta> = segments.iter().collect();
    by_size.sort_by_key(|meta| meta.num_docs());
    by_size
        .iter()
        .take(segments.len() - at_rest.max(1) + 1)
        .map(|meta| meta.id())
        .collect()
}

fn live(writer: &mut Option<IndexWriter>) -> Result<&mut IndexWriter, AggregatorError> {
    writer
        .as_mut()
        .ok_or_else(|| AggregatorError::Index("this index was replaced by a rebuild".into()))
}

/// The text document an event puts in the index (posts, threads, pages), and
/// its version.
fn text_doc(delivered: &Delivered) -> Option<(TextDoc<'_>, u64)> {
    match &delivered.event {
        Projected::Post { state, version } => {
            let doc = TextDoc {
                id: format!("post:{}", state.post_id),
                kind: "post",
                // Members-only posts are found by members only.
                visible: matches!(state.status.as_str(), "" | "published"),
                visibility: &state.visibility,
                site_id: &state.site_id,
                tags: &state.tags,
                network_id: &state.network_id,
                network_slug: &state.network_slug,
                site_slug: &state.site_slug,
                site_name: &state.site_name,
                lang: &state.lang,
                title: &state.title,
                body_html: &state.body_html,
                at: state.published_at.as_ref(),
            };
            Some((doc, *version))
        }
        Projected::Thread { state, version } => {
            let doc = TextDoc {
                id: format!("thread:{}", state.thread_id),
                kind: "thread",
                visible: !state.hidden,
                // Members-only threads: the site's members, or for
                // a network's board, the network's.
                visibility: match (state.visibility.as_str(), state.site_id.is_empty()) {
                    ("public", _) => "public",
                    (_, true) => "network",
                    (_, false) => "site",
                },
                site_id: &state.site_id,
                tags: &[],
                network_id: &state.network_id,
                network_slug: &state.network_slug,
                site_slug: &state.site_slug,
                site_name: "",
                lang: &state.lang,
                title: &state.title,
                body_html: &state.body_html,
                at: state.created_at.as_ref(),
            };
            Some((doc, *version))
        }
        Projected::Page { state, version } => {
            let doc = TextDoc {
                id: format!("page:{}", state.page_id),
                kind: "page",
                visible: !state.deleted,
                visibility: "public",
                site_id: &state.site_id,
                tags: &[],
                network_id: &state.network_id,
                network_slug: &state.network_slug,
                site_slug: &state.site_slug,
                site_name: "",
                lang: &state.lang,
                title: &state.title,
                body_html: &state.body_html,
                at: state.updated_at.as_ref(),
            };
            Some((doc, *version))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of `text` (no common words known: no pairs).
    pub(super) fn tokens(language: Language, text: &str) -> Vec<String> {
        let mut analyzer = analyzer(language, &SharedCommonWords::default());
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn small_commits_are_merged_among_themselves_not_into_a_segment_a_level_up() {
        use tantivy::index::SegmentId;
        use tantivy::indexer::MergePolicy;
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        let segment = |docs: u32| index.new_segment_meta(SegmentId::generate_random(), docs);
        let grown = segment(2_000);
        let commits: Vec<_> = (0..8).map(|_| segment(80)).collect();
        let mut segments = vec![grown.clone()];
        segments.extend(commits.iter().cloned());
        let candidates = live_merge_policy().compute_merge_candidates(&segments);
        assert_eq!(candidates.len(), 1, "one merge: {candidates:?}");
        let mut merged = candidates[0].0.clone();
        merged.sort();
        let mut expected: Vec<_> = commits.iter().map(|meta| meta.id()).collect();
        expected.sort();
        assert_eq!(
            merged, expected,
            "the eight commits, without the grown segment"
        );
        // Seven small commits wait for an eighth.
        assert!(
            live_merge_policy()
                .compute_merge_candidates(&segments[..8])
                .is_empty()
        );
    }

    #[test]
    fn at_rest_the_smallest_segments_merge_until_few_remain() {
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        let segments: Vec<SegmentMeta> = [500, 20, 90_000, 3, 7_000, 40]
            .into_iter()
            .map(|docs| index.new_segment_meta(SegmentId::generate_random(), docs))
            .collect();
        let ids = |sizes: &[usize]| -> Vec<SegmentId> {
            sizes.iter().map(|at| segments[*at].id()).collect()
        };
        // Six into three: the four smallest become one.
        assert_eq!(merge_at_rest(&segments, 3), ids(&[3, 1, 5, 0]));
        assert_eq!(merge_at_rest(&segments, 5), ids(&[3, 1]));
        assert!(merge_at_rest(&segments, 6).is_empty());
        assert_eq!(merge_at_rest(&segments, 0).len(), 6);
    }

    #[test]
    fn an_index_at_rest_merges_and_searches_the_merged_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(dir.path()).unwrap();
        // Five commits, five segments (the merge policy waits for eight).
        for n in 0..5u32 {
            let post = crate::search::tests::post(n, 1_700_000_000_000_000 + i64::from(n));
            index.apply(&[post]).unwrap();
        }
        assert_eq!(index.segments(), 5);
        // Not at rest yet: nothing merges.
        assert!(!index.tend_with(Duration::from_secs(3_600), 2).unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut started = false;
        while index.segments() > 2 {
            assert!(
                Instant::now() < deadline,
                "still {} segments",
                index.segments()
            );
            started |= index.tend_with(Duration::ZERO, 2).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started);
        assert_eq!(index.documents(), 5);
        let public = crate::search::SearchFilters {
            audiences: Arc::new(vec!["public".into()]),
            ..Default::default()
        };
        let page = index.search("paging", &public, 10, None).unwrap();
        assert_eq!(page.total, 5);
    }

    #[test]
    fn a_generation_an_unfinished_rebuild_left_is_deleted_at_open() {
        let root = tempfile::tempdir().unwrap();
        let (current, _) = SearchIndex::open(root.path()).unwrap();
        let (_abandoned, generation) =
            SearchIndex::create_next(root.path(), Some(&current)).unwrap();
        assert!(root.path().join(&generation).is_dir());
        drop(current);
        let (reopened, rebuilt) = SearchIndex::open(root.path()).unwrap();
        assert!(!rebuilt);
        assert!(!root.path().join(&generation).exists());
        assert!(
            root.path().join("gen-1").is_dir(),
            "the current generation stays"
        );
        assert_eq!(reopened.documents(), 0);
    }

    /// The event documents of the index whose start is at or after `from`.
    fn events_from(index: &SearchIndex, from: chrono::DateTime<chrono::Utc>) -> usize {
        let term = Term::from_field_date(index.fields.published_at, tantivy_date(from));
        let query = tantivy::query::BooleanQuery::new(vec![
            (
                tantivy::query::Occur::Must,
                Box::new(tantivy::query::TermQuery::new(
                    Term::from_field_text(index.fields.kind, "event"),
                    tantivy::schema::IndexRecordOption::Basic,
                )) as Box<dyn tantivy::query::Query>,
            ),
            (
                tantivy::query::Occur::Must,
                Box::new(tantivy::query::RangeQuery::new(
                    std::ops::Bound::Included(term),
                    std::ops::Bound::Unbounded,
                )),
            ),
        ]);
        index
            .reader
            .searcher()
            .search(&query, &tantivy::collector::Count)
            .unwrap()
    }

    #[test]
    fn a_series_without_an_end_rolls_its_occurrences_a_year_ahead() {
        use anp_proto::events::v1::CalendarEventState;
        let root = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(root.path()).unwrap();
        let now = chrono::Utc::now();
        let weekly = |title: &str| CalendarEventState {
            event_id: uuid::Uuid::now_v7().to_string(),
            network_id: uuid::Uuid::now_v7().to_string(),
            network_slug: "org".into(),
            site_id: uuid::Uuid::now_v7().to_string(),
            site_slug: "hall".into(),
            title: title.into(),
            time_zone: "Europe/Madrid".into(),
            start_local: (now + chrono::Duration::days(1))
                .format("%Y-%m-%dT19:00")
                .to_string(),
            duration_minutes: 60,
            rrule: "FREQ=WEEKLY".into(),
            status: "scheduled".into(),
            ..Default::default()
        };
        let (assembly, choir) = (weekly("Assembly"), weekly("Choir"));
        index
            .apply(&[
                Delivered {
                    seq: 1,
                    event: Projected::CalendarEvent {
                        state: assembly.clone(),
                        version: 1,
                    },
                    meta: None,
                    traceparent: String::new(),
                },
                Delivered {
                    seq: 2,
                    event: Projected::CalendarEvent {
                        state: choir.clone(),
                        version: 2,
                    },
                    meta: None,
                    traceparent: String::new(),
                },
            ])
            .unwrap();
        let later = now + chrono::Duration::days(300);
        let year_after = later + chrono::Duration::days(300);
        assert!(events_from(&index, now) >= 2 * 52);
        assert_eq!(events_from(&index, year_after), 0);

        // Ten months on: both reach a year ahead of then; an older version
        // than the index holds (the choir's 1) changes nothing.
        let mut old_choir = choir.clone();
        old_choir.title = "Old choir".into();
        index
            .roll_events(&[(assembly, 1), (old_choir, 1)], later)
            .unwrap();
        let rolled = events_from(&index, year_after);
        assert!((6..=10).contains(&rolled), "{rolled} rolled");
        assert_eq!(index.checkpoint().unwrap(), 2, "the checkpoint stays");
        index.roll_events(&[(choir, 2)], later).unwrap();
        assert_eq!(events_from(&index, year_after), 2 * rolled);
    }

    #[test]
    fn pairs_are_adjacent_common_words_after_analysis() {
        let mut common = CommonWords {
            version: 3,
            ..Default::default()
        };
        for word in ["tenant", "organiz", "now", "union"] {
            common.languages[0].insert(word.to_owned(), 2);
        }
        let common: SharedCommonWords = Arc::new(RwLock::new(Arc::new(common)));
        let text = "Tenants organizing, averyveryveryveryveryveryverylongwordofsorts now! \
                    The union now union";
        let mut english = analyzer(Language::English, &common);
        let mut stream = english.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            let token = stream.token();
            tokens.push((
                token.position,
                token.text.clone(),
                &text[token.offset_from..token.offset_to],
            ));
        }
        let pair = crate::pairs::pair_token;
        // Each pair after its second word, at the first word's position,
        // spanning both; the long word leaves a gap; `the` is not common.
        assert_eq!(
            tokens,
            [
                (0, "tenant".to_owned(), "Tenants"),
                (1, "organiz".to_owned(), "organizing"),
                (0, pair("tenant", "organiz"), "Tenants organizing"),
                (3, "now".to_owned(), "now"),
                (4, "the".to_owned(), "The"),
                (5, "union".to_owned(), "union"),
                (6, "now".to_owned(), "now"),
                (5, pair("union", "now"), "union now"),
                (7, "union".to_owned(), "union"),
                (6, pair("now", "union"), "now union"),
            ]
        );
        // A language without common words has no pairs.
        let mut plain = plain_analyzer(&common);
        let mut stream = plain.token_stream("tenant organ");
        let mut count = 0;
        while stream.advance() {
            assert!(!crate::pairs::is_pair(&stream.token().text));
            count += 1;
        }
        assert_eq!(count, 2);
    }

    #[test]
    fn accents_fold_and_words_stem_in_both_directions() {
        let spanish = |word| tokens(Language::Spanish, word);
        assert_eq!(spanish("organización"), spanish("organizacion"));
        assert_eq!(spanish("organizaciones"), spanish("organizacion"));
        assert_eq!(spanish("Migración"), spanish("migracion"));
        let english = |word| tokens(Language::English, word);
        assert_eq!(english("organizing"), english("organize"));
        assert_eq!(english("tenants"), english("tenant"));
    }
}
