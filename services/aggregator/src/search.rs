//! Querying the search index: words, phrases, exclusions and typos; filters;
//! only what the caller may read (see `audience`); facet counts over the
//! same permitted hits; highlighted snippets; cursor paging.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anp_proto::aggregator::v1::{Facet, FacetValue, SearchHit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, SegmentReader, TantivyDocument, Term};

use crate::AggregatorError;
use crate::facets::{FacetCounts, Sample};
use crate::index::{SearchIndex, tantivy_date};
use crate::scan::Scanned;
use crate::statistics::Statistics;

/// How long a relevance cursor keeps the index as it was at the first page
/// (from its last use).
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(600);
/// Most snapshots kept at once; the least recently used goes first.
const SNAPSHOTS_MAX: usize = 256;
/// Paging by relevance stops this deep: narrow the search instead.
pub const OFFSET_MAX: usize = 10_000;
/// Most characters of a hit's snippet.
const SNIPPET_CHARS: usize = 200;
/// Values counted per facet.
const FACET_VALUES: usize = 10;
/// The facets, by the name hits and requests use and the field counted.
const FACETS: [(&str, &str); 5] = [
    ("network", "network_slug"),
    ("site", "site_key"),
    ("kind", "kind"),
    ("tag", "tags"),
    ("lang", "lang"),
];

/// What a search is narrowed to, and how hits are ordered.
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    /// Newest first instead of by relevance.
    pub by_date: bool,
    pub network_slug: Option<String>,
    /// `<network slug>/<site slug>`.
    pub site_key: Option<String>,
    pub kind: Option<String>,
    pub tag: Option<String>,
    pub lang: Option<String>,
    /// The document's date (an occurrence's start) in `[from, to)`.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Count hits per facet.
    pub facets: bool,
    /// The caller's audience tokens (at least `public`).
    pub audiences: Arc<Vec<String>>,
}

impl SearchFilters {
    /// What a cursor is bound to: the same words and filters.
    fn fingerprint(&self, query_text: &str) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            query_text,
            self.by_date,
            &self.network_slug,
            &self.site_key,
            &self.kind,
            &self.tag,
            &self.lang,
            self.from.map(|at| at.timestamp_micros()),
            self.to.map(|at| at.timestamp_micros()),
        )
            .hash(&mut hasher);
        hasher.finish()
    }
}

/// One page of hits.
#[derive(Debug, Default)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub total: u64,
    /// More hits than `total`: counting stopped there.
    pub total_is_lower_bound: bool,
    pub facets: Vec<Facet>,
    /// The facets' counts were estimated from a sample of very many hits.
    pub facets_are_estimates: bool,
    pub next_cursor: Option<String>,
}

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// By relevance: over snapshot `snapshot`, from `offset`.
    Relevance {
        snapshot: u64,
        offset: usize,
        fingerprint: u64,
        tolerant: bool,
    },
    /// By date: after the hit dated `micros` with uid `uid` (newest first,
    /// then by uid descending).
    Date {
        micros: i64,
        uid: u64,
        fingerprint: u64,
        tolerant: bool,
    },
}

impl Cursor {
    fn encode(&self) -> String {
        let mode = |tolerant: bool| if tolerant { "t" } else { "e" };
        let text = match self {
            Cursor::Relevance {
                snapshot,
                offset,
                fingerprint,
                tolerant,
            } => format!(
                "r.{snapshot:x}.{offset}.{fingerprint:x}.{}",
                mode(*tolerant)
            ),
            Cursor::Date {
                micros,
                uid,
                fingerprint,
                tolerant,
            } => format!("d.{micros}.{uid:x}.{fingerprint:x}.{}", mode(*tolerant)),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(cursor: &str) -> Result<Self, AggregatorError> {
        let invalid = || AggregatorError::Invalid("cursor: not a cursor of this search".into());
        if cursor.len() > 200 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('.').collect();
        let hex = |value: &str| u64::from_str_radix(value, 16).map_err(|_| invalid());
        let mode = |value: &str| match value {
            "t" => Ok(true),
            "e" => Ok(false),
            _ => Err(invalid()),
        };
        match parts.as_slice() {
            ["r", snapshot, offset, fingerprint, tolerant] => Ok(Cursor::Relevance {
                snapshot: hex(snapshot)?,
                offset: offset.parse().map_err(|_| invalid())?,
                fingerprint: hex(fingerprint)?,
                tolerant: mode(tolerant)?,
            }),
            ["d", micros, uid, fingerprint, tolerant] => Ok(Cursor::Date {
                micros: micros.parse().map_err(|_| invalid())?,
                uid: hex(uid)?,
                fingerprint: hex(fingerprint)?,
                tolerant: mode(tolerant)?,
            }),
            _ => Err(invalid()),
        }
    }

    fn tolerant(&self) -> bool {
        match self {
            Cursor::Relevance { tolerant, .. } | Cursor::Date { tolerant, .. } => *tolerant,
        }
    }

    fn fingerprint(&self) -> u64 {
        match self {
            Cursor::Relevance { fingerprint, .. } | Cursor::Date { fingerprint, .. } => {
                *fingerprint
            }
        }
    }
}

/// Hits are counted exactly up to this many; beyond, the total says "at
/// least".
pub const TOTAL_EXACT_MAX: usize = 10_000;
/// From this many hits on, the fast paths are taken.
const MANY_HITS: usize = 5_000;
/// Best matches of the words alone looked at before the filters, at most.
const CANDIDATES_MAX: usize = 1_000;
/// The windows of newest documents a search by date looks in, in days
/// before the newest one (then everything).
const DATE_WINDOWS_DAYS: [i64; 4] = [1, 8, 64, 512];

/// How many documents `query` matches, counted up to `TOTAL_EXACT_MAX`.
#[derive(Debug, Clone, Copy)]
struct Counted {
    count: usize,
    /// There are more.
    more: bool,
    /// Documents (by id) looked at to count them: from them, about how
    /// many match in all.
    scanned: u64,
}

impl Counted {
    /// About how many documents of `searcher` match: `count` exactly, or
    /// as many as found in the documents looked at, over all of them.
    fn estimated(&self, searcher: &Searcher) -> u64 {
        if !self.more || self.scanned == 0 {
            return self.count as u64;
        }
        let documents: u64 = searcher
            .segment_readers()
            .iter()
            .map(|segment| u64::from(segment.max_doc()))
            .sum();
        (self.count as u64).saturating_mul(documents) / self.scanned
    }
}

fn count_capped(searcher: &Searcher, query: &dyn Query) -> Result<Counted, AggregatorError> {
    use tantivy::DocSet;
    let weight = query.weight(tantivy::query::EnableScoring::disabled_from_searcher(
        searcher,
    ))?;
    let mut count = 0;
    let mut scanned = 0u64;
    for segment in searcher.segment_readers() {
        let mut scorer = weight.scorer(segment, 1.0)?;
        let mut doc = scorer.doc();
        while doc != tantivy::TERMINATED {
            if !segment.is_deleted(doc) {
                count += 1;
                if count > TOTAL_EXACT_MAX {
                    return Ok(Counted {
                        count: TOTAL_EXACT_MAX,
                        more: true,
                        scanned: scanned + u64::from(doc) + 1,
                    });
                }
            }
            doc = scorer.advance();
        }
        scanned += u64::from(segment.max_doc());
    }
    Ok(Counted {
        count,
        more: false,
        scanned,
    })
}

/// Whether `query` matches a document that is not deleted.
fn exists(searcher: &Searcher, query: &dyn Query) -> Result<bool, AggregatorError> {
    use tantivy::DocSet;
    let weight = query.weight(tantivy::query::EnableScoring::disabled_from_searcher(
        searcher,
    ))?;
    for segment in searcher.segment_readers() {
        let mut scorer = weight.scorer(segment, 1.0)?;
        let mut doc = scorer.doc();
        while doc != tantivy::TERMINATED {
            if !segment.is_deleted(doc) {
                return Ok(true);
            }
            doc = scorer.advance();
        }
    }
    Ok(false)
}

/// The date of the newest document (microseconds).
fn newest_date(searcher: &Searcher) -> i64 {
    searcher
        .segment_readers()
        .iter()
        .filter_map(|segment| segment.fast_fields().date("published_at").ok())
        .map(|column| column.max_value().into_timestamp_micros())
        .max()
        .unwrap_or(i64::MAX)
}

/// Searchers kept so that paging by relevance sees the index as it was at
/// the first page: no hit twice, none skipped, whatever is written since.
#[derive(Clone)]
pub struct Snapshots {
    next: Arc<AtomicU64>,
    kept: Arc<Mutex<HashMap<u64, (Instant, Searcher)>>>,
}

impl Default for Snapshots {
    fn default() -> Self {
        // A random start: a cursor from an earlier process finds nothing.
        let start = uuid::Uuid::new_v4().as_u64_pair().0 >> 1;
        Snapshots {
            next: Arc::new(AtomicU64::new(start)),
            kept: Arc::default(),
        }
    }
}

impl Snapshots {
    fn keep(&self, searcher: Searcher) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut kept) = self.kept.lock() {
            kept.retain(|_, (used, _)| used.elapsed() < SNAPSHOT_TTL);
            if kept.len() >= SNAPSHOTS_MAX
                && let Some(oldest) = kept
                    .iter()
                    .min_by_key(|(_, (used, _))| *used)
                    .map(|(id, _)| *id)
            {
                kept.remove(&oldest);
            }
            kept.insert(id, (Instant::now(), searcher));
        }
        id
    }

    fn get(&self, id: u64) -> Option<Searcher> {
        let mut kept = self.kept.lock().ok()?;
        let (used, searcher) = kept.get_mut(&id)?;
        if used.elapsed() >= SNAPSHOT_TTL {
            kept.remove(&id);
            return None;
        }
        *used = Instant::now();
        Some(searcher.clone())
    }

    /// How many are kept now.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|kept| kept.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn term_query(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

impl SearchIndex {
    /// The query with typos forgiven: each plain word of five letters or
    /// more matches terms one edit away (two from eight letters), through
    /// each field's own analyzer (so stems and accents still fold); words
    /// in quotes stay phrases, `-word` still excludes. `None` when nothing
    /// would be tolerated.
    fn typo_tolerant(
        &self,
        searcher: &Searcher,
        query_text: &str,
        readable: &dyn Query,
    ) -> Result<Option<Box<dyn Query>>, AggregatorError> {
        let text_fields = self.fields.text();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut tolerated = false;
        for part in crate::words::parts(query_text) {
            let occur = if part.excluded {
                Occur::MustNot
            } else {
                Occur::Must
            };
            let letters: String = part.text.chars().filter(|c| c.is_alphanumeric()).collect();
            let distance = match (part.quoted || part.excluded, letters.chars().count()) {
                (true, _) | (_, 0..=4) => 0,
                (_, 5..=7) => 1,
                _ => 2,
            };
            let exact = self.part_query(&part.text, &mut Vec::new());
            // A word in something the caller may read is no typo (and one
            // only in hidden documents is treated like one never written).
            let known = match &exact {
                Some(exact) if distance > 0 => exists(
                    searcher,
                    &BooleanQuery::new(vec![
                        (Occur::Must, exact.box_clone()),
                        (Occur::Must, readable.box_clone()),
                    ]),
                )?,
                _ => true,
            };
            if known {
                if let Some(query) = exact {
                    clauses.push((occur, query));
                }
                continue;
            }
            let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
            for field in text_fields {
                for (_, token) in self.analyze(field, &letters) {
                    let term = Term::from_field_text(field, &token);
                    alternatives.push(Box::new(tantivy::query::FuzzyTermQuery::new(
                        term, distance, true,
                    )));
                }
            }
            if alternatives.is_empty() {
                continue;
            }
            tolerated = true;
            clauses.push((
                occur,
                Box::new(crate::words::SeekUnionQuery::new(alternatives)),
            ));
        }
        Ok(
            (tolerated && clauses.iter().any(|(occur, _)| *occur == Occur::Must))
                .then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>),
        )
    }

    /// Searches titles and bodies in every language, narrowed by `filters`,
    /// over what the caller may read; `cursor` continues an earlier page.
    pub fn search(
        &self,
        query_text: &str,
        filters: &SearchFilters,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SearchPage, AggregatorError> {
        let fields = self.fields;
        let fingerprint = filters.fingerprint(query_text);
        let cursor = cursor.map(Cursor::decode).transpose()?;
        if cursor.is_some_and(|cursor| cursor.fingerprint() != fingerprint) {
            return Err(AggregatorError::Invalid(
                "cursor: belongs to another search (other words or filters)".into(),
            ));
        }
        if cursor.is_some_and(|cursor| matches!(cursor, Cursor::Date { .. }) != filters.by_date) {
            return Err(AggregatorError::Invalid(
                "cursor: belongs to another sort".into(),
            ));
        }
        let (searcher, snapshot, offset) = match cursor {
            Some(Cursor::Relevance {
                snapshot, offset, ..
            }) => {
                if offset > OFFSET_MAX {
                    return Err(AggregatorError::Invalid(format!(
                        "cursor: paging stops after {OFFSET_MAX} hits; narrow the search"
                    )));
                }
                let searcher = self.snapshots.get(snapshot).ok_or_else(|| {
                    AggregatorError::Expired(
                        "cursor: expired (unused for 10 minutes, or the service restarted); search again"
                            .into(),
                    )
                })?;
                (searcher, Some(snapshot), offset)
            }
            _ => (self.reader.searcher(), None, 0),
        };
        // Each term's statistics are looked up once for every weight.
        let statistics = Statistics::new(&searcher);
        let crate::words::Built {
            query: text_query,
            highlight,
        } = self.words_query(query_text);
        // Only what the caller may read: tombstones have no audience.
        let readable: Vec<(Occur, Box<dyn Query>)> = filters
            .audiences
            .iter()
            .map(|token| (Occur::Should, term_query(fields.audience, token)))
            .collect();
        let readable: Box<dyn Query> = Box::new(BooleanQuery::new(readable));
        let date_term = |at: chrono::DateTime<chrono::Utc>| {
            Term::from_field_date_for_search(fields.published_at, tantivy_date(at))
        };
        // The words narrowed by the filters: what counts and facets see.
        let narrowed = |matching: Box<dyn Query>| -> Box<dyn Query> {
            // Filters do not score: a hit's score is its words' alone.
            let filter = |query: Box<dyn Query>| -> Box<dyn Query> {
                Box::new(tantivy::query::ConstScoreQuery::new(query, 0.0))
            };
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
                (Occur::Must, matching),
                (Occur::Must, filter(readable.box_clone())),
            ];
            for (field, value) in [
                (fields.network_slug, &filters.network_slug),
                (fields.site_key, &filters.site_key),
                (fields.kind, &filters.kind),
                (fields.tags, &filters.tag),
                (fields.lang, &filters.lang),
            ] {
                if let Some(value) = value {
                    clauses.push((Occur::Must, filter(term_query(field, value))));
                }
            }
            if filters.from.is_some() || filters.to.is_some() {
                clauses.push((
                    Occur::Must,
                    filter(Box::new(Scanned(Box::new(RangeQuery::new(
                        filters
                            .from
                            .map_or(Bound::Unbounded, |at| Bound::Included(date_term(at))),
                        filters
                            .to
                            .map_or(Bound::Unbounded, |at| Bound::Excluded(date_term(at))),
                    ))))),
                ));
            }
            Box::new(BooleanQuery::new(clauses))
        };
        // Typos are forgiven when what was typed finds nothing; a cursor
        // keeps the choice.
        let exact = narrowed(text_query.box_clone());
        let with_typos = |close: Box<dyn Query>| {
            narrowed(Box::new(BooleanQuery::new(vec![
                (
                    Occur::Should,
                    Box::new(tantivy::query::BoostQuery::new(text_query.box_clone(), 2.0))
                        as Box<dyn Query>,
                ),
                (Occur::Should, close),
            ])))
        };
        let (query, tolerant, counted) = match cursor.map(|cursor| cursor.tolerant()) {
            Some(false) => (exact, false, None),
            Some(true) => match self.typo_tolerant(&searcher, query_text, &*readable)? {
                Some(close) => (with_typos(close), true, None),
                None => (exact, false, None),
            },
            None => {
                let total = count_capped(&searcher, &*exact)?;
                match total.count {
                    0 => match self.typo_tolerant(&searcher, query_text, &*readable)? {
                        Some(close) => (with_typos(close), true, None),
                        None => (exact, false, Some(total)),
                    },
                    _ => (exact, false, Some(total)),
                }
            }
        };
        // Counted exactly up to TOTAL_EXACT_MAX, without scores.
        let counted = match counted {
            Some(counted) => counted,
            None => count_capped(&searcher, &*query)?,
        };
        let (total, total_is_lower_bound) = (counted.count, counted.more);
        // Fast paths pay off for many hits; a few thousand are ranked in full.
        let many = total_is_lower_bound || total > MANY_HITS;
        let (top, last_key) = if filters.by_date {
            let after = match cursor {
                Some(Cursor::Date { micros, uid, .. }) => Some((micros, uid)),
                _ => None,
            };
            // Hits at or before the cursor score None, below every other
            // hit, and are dropped: each hit comes once, none is skipped.
            let collector =
                TopDocs::with_limit(limit + 1).order_by(move |segment: &SegmentReader| {
                    let dates = segment
                        .fast_fields()
                        .date("published_at")
                        .ok()
                        .map(|column| column.first_or_default_col(tantivy::DateTime::MIN));
                    let uids = segment
                        .fast_fields()
                        .u64("uid")
                        .ok()
                        .map(|column| column.first_or_default_col(0));
                    move |doc: tantivy::DocId| {
                        let key = (
                            dates.as_ref().map_or(i64::MIN, |dates| {
                                dates.get_val(doc).into_timestamp_micros()
                            }),
                            uids.as_ref().map_or(0, |uids| uids.get_val(doc)),
                        );
                        match after {
                            Some(after) if key >= after => None,
                            _ => Some(key),
                        }
                    }
                });
            // The newest hits are found in a window of the newest documents,
            // widened until it holds a page (everything older is older).
            let newest = match after {
                Some((micros, _)) => micros,
                None => newest_date(&searcher),
            };
            let mut top: Vec<((i64, u64), DocAddress)> = Vec::new();
            // A few thousand hits are sorted at once.
            let windows: &[i64] = if many { &DATE_WINDOWS_DAYS } else { &[] };
            for days in windows.iter().map(Some).chain([None]) {
                let windowed: Box<dyn Query> = match days {
                    Some(days) => {
                        let since = chrono::DateTime::from_timestamp_micros(
                            newest.saturating_sub(days * 86_400_000_000),
                        )
                        .unwrap_or_default();
                        Box::new(BooleanQuery::new(vec![
                            (Occur::Must, query.box_clone()),
                            (
                                Occur::Must,
                                Box::new(tantivy::query::ConstScoreQuery::new(
                                    Box::new(Scanned(Box::new(RangeQuery::new(
                                        Bound::Included(date_term(since)),
                                        Bound::Unbounded,
                                    )))),
                                    0.0,
                                )),
                            ),
                        ]))
                    }
                    None => query.box_clone(),
                };
                top = searcher
                    .search(&*windowed, &collector)?
                    .into_iter()
                    .filter_map(|(key, address)| Some((key?, address)))
                    .collect();
                if top.len() > limit {
                    break;
                }
            }
            let more = top.len() > limit;
            top.truncate(limit);
            let last = top.last().map(|(key, _)| *key).filter(|_| more);
            (
                top.into_iter()
                    .map(|(_, address)| (0.0, address))
                    .collect::<Vec<(f32, DocAddress)>>(),
                last,
            )
        } else {
            let top = match (tolerant, offset + limit <= CANDIDATES_MAX / 4 && many) {
                (false, true) => {
                    let everything: Box<dyn Query> = Box::new(tantivy::query::AllQuery);
                    let ranking = self
                        .single_word_ranking(query_text)
                        .or_else(|| self.phrase_ranking(query_text));
                    self.top_by_words(
                        &statistics,
                        ranking.as_deref().unwrap_or(&*text_query),
                        &*narrowed(everything),
                        offset,
                        limit,
                    )?
                }
                _ => None,
            };
            let top = match top {
                Some(top) => top,
                None => statistics.search(
                    &*query,
                    &TopDocs::with_limit(limit)
                        .and_offset(offset)
                        .order_by_score(),
                )?,
            };
            (top, None)
        };
        // Very many hits are counted from a sample of them.
        let sample = Sample::for_matches(counted.estimated(&searcher));
        let facets = if filters.facets {
            self.facets(&searcher, &*query, sample)?
        } else {
            Vec::new()
        };
        let next_cursor = match last_key {
            Some((micros, uid)) => Some(Cursor::Date {
                micros,
                uid,
                fingerprint,
                tolerant,
            }),
            None if filters.by_date => None,
            None if offset + top.len() < total && top.len() == limit => Some(Cursor::Relevance {
                snapshot: snapshot.unwrap_or_else(|| self.snapshots.keep(searcher.clone())),
                offset: offset + top.len(),
                fingerprint,
                tolerant,
            }),
            None => None,
        }
        .map(|cursor| cursor.encode());
        let hits = self.hits(&statistics, &*highlight, top)?;
        Ok(SearchPage {
            hits,
            total: total as u64,
            total_is_lower_bound,
            facets_are_estimates: filters.facets && sample.is_some(),
            facets,
            next_cursor,
        })
    }

    /// The best matches of the words alone that pass the filters, when
    /// enough of them do (a filter that keeps few: `None`, search with it).
    /// Ranking the words alone skips whole blocks of weak matches.
    fn top_by_words(
        &self,
        statistics: &Statistics<'_>,
        words: &dyn Query,
        filters: &dyn Query,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<(f32, DocAddress)>>, AggregatorError> {
        use tantivy::DocSet;
        let wanted = offset + limit;
        let looked_at = (wanted * 4).clamp(64, CANDIDATES_MAX);
        let searcher = statistics.searcher();
        let candidates =
            statistics.search(words, &TopDocs::with_limit(looked_at).order_by_score())?;
        let every_match_seen = candidates.len() < looked_at;
        let weight = filters.weight(tantivy::query::EnableScoring::disabled_from_searcher(
            searcher,
        ))?;
        let mut by_segment: HashMap<u32, Vec<u32>> = HashMap::new();
        for (_, address) in &candidates {
            by_segment
                .entry(address.segment_ord)
                .or_default()
                .push(address.doc_id);
        }
        let mut passing: std::collections::HashSet<DocAddress> = Default::default();
        for (segment_ord, mut docs) in by_segment {
            docs.sort_unstable();
            let mut scorer = weight.scorer(searcher.segment_reader(segment_ord), 1.0)?;
            for doc in docs {
                let at = if scorer.doc() < doc {
                    scorer.seek(doc)
                } else {
                    scorer.doc()
                };
                if at == doc {
                    passing.insert(DocAddress::new(segment_ord, doc));
                }
            }
        }
        let kept: Vec<(f32, DocAddress)> = candidates
            .into_iter()
            .filter(|(_, address)| passing.contains(address))
            .collect();
        // Enough, or every match of the words was looked at.
        if kept.len() < wanted && !every_match_seen {
            return Ok(None);
        }
        Ok(Some(kept.into_iter().skip(offset).take(limit).collect()))
    }

    /// The top values of each facet among the hits of `query` (estimated
    /// from `sample` of them, if any).
    fn facets(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        sample: Option<Sample>,
    ) -> Result<Vec<Facet>, AggregatorError> {
        let fields = FACETS.iter().map(|(_, field)| *field).collect();
        let collector = FacetCounts::new(&self.facet_values, fields, FACET_VALUES).sampled(sample);
        let top = searcher.search(query, &collector)?;
        Ok(FACETS
            .iter()
            .zip(top)
            .map(|((name, _), values)| Facet {
                field: (*name).to_owned(),
                values: values
                    .into_iter()
                    .map(|(value, count)| FacetValue { value, count })
                    .collect(),
            })
            .collect())
    }

    /// The stored documents of `top` as hits, with snippets of `text_query`.
    fn hits(
        &self,
        statistics: &Statistics<'_>,
        text_query: &dyn Query,
        top: Vec<(f32, DocAddress)>,
    ) -> Result<Vec<SearchHit>, AggregatorError> {
        let fields = self.fields;
        // Bodies first, then titles, each in every language.
        let languages = fields.languages();
        let mut generators = Vec::new();
        for title in [false, true] {
            for ((title_field, body_field), analyzer) in
                languages.iter().zip(self.snippet_analyzers.iter())
            {
                let field = if title { *title_field } else { *body_field };
                generators.push(statistics.snippets(
                    text_query,
                    field,
                    analyzer.clone(),
                    SNIPPET_CHARS,
                )?);
            }
        }
        let searcher = statistics.searcher();
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            let text = |field: Field| {
                document
                    .get_first(field)
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let lang = text(fields.lang);
            let title = text(fields.for_lang(&lang).0);
            let snippet_html = generators
                .iter()
                .map(|generator| generator.snippet_from_doc(&document).to_html())
                .find(|html| !html.is_empty())
                .unwrap_or_default();
            let published_at = document
                .get_first(fields.published_at)
                .and_then(|value| value.as_datetime())
                .map(|date| prost_types::Timestamp {
                    seconds: date.into_timestamp_secs(),
                    nanos: 0,
                });
            let id = text(fields.id);
            let (kind, bare_id) = id.split_once(':').unwrap_or(("", id.as_str()));
            hits.push(SearchHit {
                kind: kind.to_owned(),
                id: bare_id.to_owned(),
                title,
                snippet_html,
                network_slug: text(fields.network_slug),
                site_slug: text(fields.site_slug),
                site_name: text(fields.site_name),
                lang,
                published_at,
                score,
                tags: document
                    .get_all(fields.tags)
                    .filter_map(|value| value.as_str().map(str::to_owned))
                    .collect(),
                visibility: text(fields.visibility),
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::{Delivered, Projected};
    use anp_proto::events::v1::PostState;

    /// Post `n` (the word "paging" in its body), public, dated `micros`.
    pub(crate) fn post(n: u32, micros: i64) -> Delivered {
        Delivered {
            seq: u64::from(n) + 1,
            event: Projected::Post {
                state: PostState {
                    post_id: format!("00000000-0000-0000-0000-{n:012}"),
                    network_id: "11111111-1111-1111-1111-111111111111".into(),
                    network_slug: "net".into(),
                    site_id: "22222222-2222-2222-2222-222222222222".into(),
                    site_slug: "site".into(),
                    title: format!("Post {n}"),
                    body_html: "<p>paging</p>".into(),
                    lang: "en".into(),
                    published_at: Some(prost_types::Timestamp {
                        seconds: micros / 1_000_000,
                        nanos: (micros % 1_000_000) as i32 * 1000,
                    }),
                    ..Default::default()
                },
                version: 1,
            },
            meta: None,
            traceparent: String::new(),
        }
    }

    fn public() -> SearchFilters {
        SearchFilters {
            audiences: Arc::new(vec!["public".into()]),
            ..Default::default()
        }
    }

    /// Pages of `limit` until the end, as post numbers.
    fn all_pages(index: &SearchIndex, filters: &SearchFilters, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let page = index
                .search("paging", filters, limit, cursor.as_deref())
                .unwrap();
            ids.extend(page.hits.into_iter().map(|hit| hit.title));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return ids,
            }
        }
        panic!("no end");
    }

    #[test]
    fn newest_first_across_years_widens_its_window_and_keeps_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(dir.path()).unwrap();
        // Posts 40 days apart: pages cross every window.
        let base = 1_500_000_000_000_000i64;
        let day = 86_400_000_000i64;
        let batch: Vec<Delivered> = (0..40)
            .map(|n| post(n, base + i64::from(n) * 40 * day))
            .collect();
        index.apply(&batch).unwrap();
        let filters = SearchFilters {
            by_date: true,
            ..public()
        };
        let titles = all_pages(&index, &filters, 7);
        let expected: Vec<String> = (0..40).rev().map(|n| format!("Post {n}")).collect();
        assert_eq!(titles, expected);
        let page = index.search("paging", &filters, 5, None).unwrap();
        assert_eq!((page.total, page.total_is_lower_bound), (40, false));
    }

    #[test]
    fn additions_never_committed_are_discarded_before_they_come_again() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(dir.path()).unwrap();
        let base = 1_600_000_000_000_000i64;
        let batch: Vec<Delivered> = (0..3).map(|n| post(n, base + i64::from(n))).collect();
        // A worker stopped after adding, before committing.
        index
            .add(&batch, None, &mut std::collections::HashMap::new())
            .unwrap();
        index.discard_uncommitted().unwrap();
        // The same events, delivered again.
        index.apply(&batch).unwrap();
        assert_eq!(index.documents(), 3);
    }

    #[test]
    fn pages_by_date_and_relevance_cover_every_hit_once() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(dir.path()).unwrap();
        // Some posts share a microsecond: the uid orders them.
        let base = 1_700_000_000_000_000i64;
        let batch: Vec<Delivered> = (0..23).map(|n| post(n, base + i64::from(n / 3))).collect();
        index.apply(&batch).unwrap();
        for by_date in [true, false] {
            let filters = SearchFilters {
                by_date,
                ..public()
            };
            let ids = all_pages(&index, &filters, 5);
            let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
            assert_eq!(ids.len(), 23, "by date {by_date}: {ids:?}");
            assert_eq!(unique.len(), 23, "by date {by_date}: {ids:?}");
        }
    }
}
