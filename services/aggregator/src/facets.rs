//! Facet counts: how many hits of a search each network, site, kind, tag and
//! language holds (decision 0020).
//!
//! Hits are counted by the term ordinals of the fast fields, one array of
//! counters a segment and facet. Ordinals are a segment's own, so they are
//! mapped to numbers shared by all segments: each segment's dictionary is
//! read once (segments never change) and every value numbered once, so
//! adding up the segments is adding arrays, and only the top values are
//! turned into names. Tantivy's terms aggregation instead read every
//! counted value's name from every segment's dictionary on every search,
//! which at a few thousand sites cost more than the search.
//!
//! A search with very many hits is counted from a sample of them
//! (`Sample`): in each window of documents (by id, so spread over the
//! index's whole history) the hits among its first few, each counted as
//! many. Counting every hit of a word most documents hold cost several
//! times the search itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED};

/// Segments whose numbering is kept; past it (merges replace segments),
/// the numbering starts again.
const SEGMENTS_MAX: usize = 256;
/// Values numbered, over all facets, before the numbering starts again.
const VALUES_MAX: usize = 2_000_000;
/// Hits whose ordinals are read at once.
const BLOCK: usize = 64;
/// Hits counted, about, when a search is counted from a sample.
const SAMPLED_HITS: u64 = 20_000;
/// Documents (by id) of a sample's window.
const WINDOW: u32 = 4_096;

/// Which hits are counted: in each `window` documents (by id) of a segment,
/// the hits among the first `taken`, each counted as `window / taken`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// At least 1 (made only by `for_matches`).
    window: u32,
    taken: u32,
}

impl Sample {
    /// The sample for a search of about `matches` hits: none (every hit
    /// counted) up to twice `SAMPLED_HITS`, else about `SAMPLED_HITS`.
    pub fn for_matches(matches: u64) -> Option<Sample> {
        if matches <= 2 * SAMPLED_HITS {
            return None;
        }
        let taken = (u64::from(WINDOW) * SAMPLED_HITS).div_ceil(matches);
        Some(Sample {
            window: WINDOW,
            taken: taken.clamp(1, u64::from(WINDOW)) as u32,
        })
    }
}

/// The numbering of facet values, shared by the searches of an index.
pub struct FacetValues {
    current: Mutex<Arc<Numbering>>,
}

impl Default for FacetValues {
    fn default() -> Self {
        FacetValues {
            current: Mutex::new(Arc::new(Numbering::new(0))),
        }
    }
}

impl FacetValues {
    /// The numbering to count with, started again when it has grown too
    /// large (searches counting with the old one finish with it).
    fn numbering(&self, facets: usize) -> Arc<Numbering> {
        let mut current = lock(&self.current);
        let full = {
            let inner = lock(&current.inner);
            inner.names.len() != facets
                || inner.segments.len() > SEGMENTS_MAX
                || inner.names.iter().map(Vec::len).sum::<usize>() > VALUES_MAX
        };
        if full {
            *current = Arc::new(Numbering::new(facets));
        }
        current.clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Values numbered from 0 in each facet, and each segment's ordinals
/// mapped to those numbers.
pub struct Numbering {
    inner: Mutex<NumberingInner>,
}

#[derive(Default)]
struct NumberingInner {
    /// Per facet: number → value, value → number.
    names: Vec<Vec<Box<str>>>,
    numbers: Vec<HashMap<Box<str>, u32>>,
    /// Per segment, per facet: ordinal → number.
    segments: HashMap<SegmentId, Arc<Vec<Vec<u32>>>>,
}

impl Numbering {
    fn new(facets: usize) -> Self {
        Numbering {
            inner: Mutex::new(NumberingInner {
                names: vec![Vec::new(); facets],
                numbers: vec![HashMap::new(); facets],
                segments: HashMap::new(),
            }),
        }
    }

    /// A segment's ordinals as numbers, for each of `columns` (its
    /// dictionary is read the first time only).
    fn segment(
        &self,
        id: SegmentId,
        columns: &[Option<StrColumn>],
    ) -> tantivy::Result<Arc<Vec<Vec<u32>>>> {
        if let Some(known) = lock(&self.inner).segments.get(&id) {
            return Ok(known.clone());
        }
        // Read outside the lock: other searches go on meanwhile.
        let mut values: Vec<Vec<Vec<u8>>> = Vec::with_capacity(columns.len());
        for column in columns {
            let mut terms = Vec::new();
            if let Some(column) = column {
                terms.reserve(column.num_terms());
                let mut stream = column.dictionary().stream()?;
                while stream.advance() {
                    terms.push(stream.key().to_vec());
                }
            }
            values.push(terms);
        }
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let mut mapped = Vec::with_capacity(values.len());
        for (facet, terms) in values.into_iter().enumerate() {
            let (names, numbers) = (&mut inner.names[facet], &mut inner.numbers[facet]);
            mapped.push(
                terms
                    .into_iter()
                    .map(|term| {
                        let value = String::from_utf8_lossy(&term);
                        match numbers.get(&*value) {
                            Some(number) => *number,
                            None => {
                                let number = names.len() as u32;
                                let value: Box<str> = value.into();
                                names.push(value.clone());
                                numbers.insert(value, number);
                                number
                            }
                        }
                    })
                    .collect(),
            );
        }
        let mapped = Arc::new(mapped);
        inner.segments.insert(id, mapped.clone());
        Ok(mapped)
    }
}

/// Counts, for each of `fields` (string fast fields), the hits per value;
/// the fruit is each field's `size` most frequent values.
pub struct FacetCounts {
    fields: Vec<&'static str>,
    size: usize,
    numbering: Arc<Numbering>,
    sample: Option<Sample>,
}

impl FacetCounts {
    pub fn new(values: &FacetValues, fields: Vec<&'static str>, size: usize) -> Self {
        FacetCounts {
            numbering: values.numbering(fields.len()),
            fields,
            size,
            sample: None,
        }
    }

    /// Counts from `sample` of the hits (none: every hit), the counts
    /// scaled to estimates of all of them.
    pub fn sampled(mut self, sample: Option<Sample>) -> Self {
        self.sample = sample;
        self
    }
}

/// Each field's most frequent values with their counts, most first (ties
/// by value), in the order of the fields; the empty value is not one.
pub type Top = Vec<Vec<(String, u64)>>;

impl Collector for FacetCounts {
    type Fruit = Top;
    type Child = SegmentFacetCounts;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacetCounts> {
        let columns = self
            .fields
            .iter()
            .map(|name| reader.fast_fields().str(name))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let numbers = self.numbering.segment(reader.segment_id(), &columns)?;
        let counters = numbers.iter().map(|ords| vec![0u32; ords.len()]).collect();
        Ok(SegmentFacetCounts {
            columns,
            counters,
            numbers,
            block: OrdBlock::default(),
            pending: Vec::with_capacity(BLOCK),
            scale: 1.0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentCounts> {
        let mut counts = self.for_segment(segment_ord, reader)?;
        let alive = reader.alive_bitset();
        let Some(sample) = self.sample else {
            weight.for_each_no_score(reader, &mut |docs| match alive {
                None => counts.collect_block(docs),
                Some(alive) => {
                    for doc in docs.iter().copied().filter(|doc| alive.is_alive(*doc)) {
                        counts.collect(doc, 0.0);
                    }
                }
            })?;
            return Ok(counts.harvest());
        };
        let max_doc = reader.max_doc();
        let mut scorer = weight.scorer(reader, 1.0)?;
        // Documents the sample's windows looked at.
        let mut covered = 0u64;
        let mut start: DocId = 0;
        while start < max_doc {
            let end = start.saturating_add(sample.taken).min(max_doc);
            covered += u64::from(end - start);
            let mut doc = scorer.doc();
            if doc < start {
                doc = scorer.seek(start);
            }
            while doc < end {
                if alive.is_none_or(|alive| alive.is_alive(doc)) {
                    counts.collect(doc, 0.0);
                }
                doc = scorer.advance();
            }
            start = start.saturating_add(sample.window);
            if doc == TERMINATED {
                break;
            }
        }
        // The windows after the last hit hold none: looked at too.
        while start < max_doc {
            covered += u64::from(start.saturating_add(sample.taken).min(max_doc) - start);
            start = start.saturating_add(sample.window);
        }
        if covered > 0 {
            counts.scale = f64::from(max_doc) / covered as f64;
        }
        Ok(counts.harvest())
    }

    fn merge_fruits(&self, fruits: Vec<SegmentCounts>) -> tantivy::Result<Top> {
        let inner = lock(&self.numbering.inner);
        let mut top = Vec::with_capacity(self.fields.len());
        for (facet, names) in inner.names.iter().enumerate() {
            // Exact sums of counts, or of a sample's scaled counts.
            let mut totals = vec![0f64; names.len()];
            for fruit in &fruits {
                for (ord, count) in fruit.counters[facet].iter().enumerate() {
                    if *count > 0 {
                        totals[fruit.numbers[facet][ord] as usize] +=
                            f64::from(*count) * fruit.scale;
                    }
                }
            }
            let mut counted: Vec<(u64, &str)> = totals
                .into_iter()
                .zip(names)
                .filter(|(count, name)| *count > 0.0 && !name.is_empty())
                .map(|(count, name)| ((count.round() as u64).max(1), &**name))
                .collect();
            let order = |a: &(u64, &str), b: &(u64, &str)| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1));
            if counted.len() > self.size && self.size > 0 {
                counted.select_nth_unstable_by(self.size - 1, order);
            }
            counted.truncate(self.size);
            counted.sort_unstable_by(order);
            top.push(
                counted
                    .into_iter()
                    .map(|(count, name)| (name.to_owned(), count))
                    .collect(),
            );
        }
        Ok(top)
    }
}

/// A segment's counters: one an ordinal of each field's dictionary.
pub struct SegmentFacetCounts {
    columns: Vec<Option<StrColumn>>,
    counters: Vec<Vec<u32>>,
    numbers: Arc<Vec<Vec<u32>>>,
    /// Ordinals of a block of hits, read at once.
    block: OrdBlock,
    /// Hits collected one by one (a segment with deleted documents), read
    /// a block at a time.
    pending: Vec<DocId>,
    /// What a hit counted stands for: 1, or more in a sample.
    scale: f64,
}

/// Reads the values of a block of documents at once: one call into the
/// column's codec for the block, not one a document.
#[derive(Default)]
struct OrdBlock {
    docs: Vec<DocId>,
    rows: Vec<u32>,
    values: Vec<u64>,
}

impl OrdBlock {
    /// Every value of every document in `docs` (several for a multivalued
    /// column, none for a document without one).
    fn fetch(&mut self, docs: &[DocId], column: &Column<u64>) -> &[u64] {
        let rows: &[u32] = match &column.index {
            ColumnIndex::Full => docs,
            _ => {
                self.docs.clear();
                self.rows.clear();
                column.row_ids_for_docs(docs, &mut self.docs, &mut self.rows);
                &self.rows
            }
        };
        self.values.resize(rows.len(), 0);
        column.values.get_vals(rows, &mut self.values);
        &self.values
    }
}

/// What a segment counted: per field, hits per ordinal, and the numbers of
/// its ordinals.
pub struct SegmentCounts {
    counters: Vec<Vec<u32>>,
    numbers: Arc<Vec<Vec<u32>>>,
    scale: f64,
}

impl SegmentFacetCounts {
    fn count(&mut self, docs: &[DocId]) {
        for (column, counters) in self.columns.iter().zip(&mut self.counters) {
            if let Some(column) = column {
                for &ord in self.block.fetch(docs, column.ords()) {
                    if let Some(counter) = counters.get_mut(ord as usize) {
                        *counter += 1;
                    }
                }
            }
        }
    }
}

impl SegmentCollector for SegmentFacetCounts {
    type Fruit = SegmentCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.pending.push(doc);
        if self.pending.len() == BLOCK {
            let pending = std::mem::take(&mut self.pending);
            self.count(&pending);
            self.pending = pending;
            self.pending.clear();
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.count(docs);
    }

    fn harvest(mut self) -> SegmentCounts {
        let pending = std::mem::take(&mut self.pending);
        self.count(&pending);
        SegmentCounts {
            counters: self.counters,
            numbers: self.numbers,
            scale: self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{FAST, STRING, Schema};
    use tantivy::{Index, TantivyDocument, Term};

    fn owned(values: &[(&str, u64)]) -> Vec<(String, u64)> {
        values.iter().map(|(v, c)| ((*v).to_owned(), *c)).collect()
    }

    #[test]
    fn counts_every_hit_once_a_value_across_segments_without_deleted_ones() {
        let mut builder = Schema::builder();
        let id = builder.add_text_field("id", STRING);
        let network = builder.add_text_field("network", STRING | FAST);
        let tags = builder.add_text_field("tags", STRING | FAST);
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let add = |writer: &mut tantivy::IndexWriter, n: &str, net: &str, tag: &[&str]| {
            let mut document = TantivyDocument::default();
            document.add_text(id, n);
            document.add_text(network, net);
            for tag in tag {
                document.add_text(tags, tag);
            }
            writer.add_document(document).unwrap();
        };
        add(&mut writer, "1", "climate", &["march", "water"]);
        add(&mut writer, "2", "climate", &["water"]);
        add(&mut writer, "3", "housing", &[]);
        writer.commit().unwrap();
        add(&mut writer, "4", "housing", &["march"]);
        add(&mut writer, "5", "migrants", &["march"]);
        add(&mut writer, "6", "housing", &["rent"]);
        // More than a block of hits in a segment with a deleted document.
        for n in 0..150 {
            add(&mut writer, &format!("bulk-{n}"), "zines", &[]);
        }
        writer.delete_term(Term::from_field_text(id, "6"));
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 2);

        let values = FacetValues::default();
        let fields = vec!["network", "tags", "missing"];
        let everything = FacetCounts::new(&values, fields.clone(), 10);
        let top = searcher
            .search(&tantivy::query::AllQuery, &everything)
            .unwrap();
        assert_eq!(
            top[0],
            owned(&[
                ("zines", 150),
                ("climate", 2),
                ("housing", 2),
                ("migrants", 1)
            ])
        );
        assert_eq!(top[1], owned(&[("march", 3), ("water", 2)]));
        assert!(top[2].is_empty());

        // Only the hits of the query count; the most frequent first, as
        // many as asked for (the segments' numbering is kept).
        let query = tantivy::query::TermQuery::new(
            Term::from_field_text(tags, "march"),
            tantivy::schema::IndexRecordOption::Basic,
        );
        let two = FacetCounts::new(&values, fields, 2);
        let top = searcher.search(&query, &two).unwrap();
        assert_eq!(top[0], owned(&[("climate", 1), ("housing", 1)]));
        assert_eq!(top[1], owned(&[("march", 3), ("water", 1)]));
        assert_eq!(lock(&two.numbering.inner).segments.len(), 2);
    }

    #[test]
    fn a_sample_of_very_many_hits_estimates_their_counts() {
        assert_eq!(Sample::for_matches(40_000), None);
        assert_eq!(
            Sample::for_matches(1_000_000),
            Some(Sample {
                window: 4_096,
                taken: 82
            })
        );
        assert_eq!(Sample::for_matches(u64::MAX).map(|s| s.taken), Some(1));

        let mut builder = Schema::builder();
        let id = builder.add_text_field("id", STRING);
        let network = builder.add_text_field("network", STRING | FAST);
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 50_000_000).unwrap();
        // 50 % climate, 30 % housing, 20 % migrants, evenly mixed; two
        // segments, the second not a whole number of windows.
        let network_of = |n: u32| match n % 10 {
            0..5 => "climate",
            5..8 => "housing",
            _ => "migrants",
        };
        for n in 0..50_000u32 {
            let mut document = TantivyDocument::default();
            document.add_text(id, n.to_string());
            document.add_text(network, network_of(n));
            writer.add_document(document).unwrap();
            if n == 29_999 {
                writer.commit().unwrap();
            }
        }
        // Deleted documents are not counted, sampled or not.
        for n in (0..50_000u32).filter(|n| n % 10 == 9) {
            writer.delete_term(Term::from_field_text(id, &n.to_string()));
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 2);

        let values = FacetValues::default();
        let count = |sample| {
            let collector = FacetCounts::new(&values, vec!["network"], 10).sampled(sample);
            searcher
                .search(&tantivy::query::AllQuery, &collector)
                .unwrap()
                .remove(0)
        };
        let exact = owned(&[
            ("climate", 25_000),
            ("housing", 15_000),
            ("migrants", 5_000),
        ]);
        assert_eq!(count(None), exact);
        // A sample of whole windows is every hit.
        let whole = Sample {
            window: 4_096,
            taken: 4_096,
        };
        assert_eq!(count(Some(whole)), exact);
        // A tenth of each window: each count within 3 % of the truth, the
        // same order.
        let tenth = count(Some(Sample {
            window: 4_096,
            taken: 410,
        }));
        assert_eq!(tenth.len(), 3);
        for ((value, estimate), (expected_value, truth)) in tenth.iter().zip(&exact) {
            assert_eq!(value, expected_value);
            let error = (*estimate as f64 - *truth as f64).abs() / *truth as f64;
            assert!(error < 0.03, "{value}: {estimate} for {truth}");
        }
    }
}
