//! A filter that scans a fast field, offered to intersections as the
//! cheap driver it is.
//!
//! Tantivy (since 0.26) lets the cheapest clause of an intersection drive
//! it and prices a fast-field range at 80 % of a segment's documents, so a
//! word held by fewer documents than that drives instead: each of its
//! documents is looked up in the date column one by one. A window of the
//! newest days over a common word then costs a lookup for every document
//! of the word. Scanning the column in blocks and seeking the word's
//! postings to the few documents of the window is much cheaper; Tantivy
//! 0.25 chose it, pricing the range at a tenth of the segment, and so does
//! this wrapper.

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, DocSet, Score, SeekDangerResult, SegmentReader};

/// What driving a column scan costs, as a share of a segment's documents.
const SCAN_COST_DIVISOR: u32 = 10;

/// `inner` (a range over a fast field), priced as a block scan of its
/// column.
#[derive(Debug)]
pub struct Scanned(pub Box<dyn Query>);

impl Clone for Scanned {
    fn clone(&self) -> Self {
        Scanned(self.0.box_clone())
    }
}

impl Query for Scanned {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ScannedWeight(self.0.weight(enable_scoring)?)))
    }
}

struct ScannedWeight(Box<dyn Weight>);

impl Weight for ScannedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inner = self.0.scorer(reader, boost)?;
        let cost = u64::from(reader.max_doc() / SCAN_COST_DIVISOR).min(inner.cost());
        Ok(Box::new(ScannedScorer { inner, cost }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.0.count(reader)
    }
}

struct ScannedScorer {
    inner: Box<dyn Scorer>,
    cost: u64,
}

impl DocSet for ScannedScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }

    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        self.inner.seek_danger(target)
    }

    fn fill_buffer(&mut self, buffer: &mut [DocId; COLLECT_BLOCK_BUFFER_LEN]) -> usize {
        self.inner.fill_buffer(buffer)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.cost
    }
}

impl Scorer for ScannedScorer {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::Count;
    use tantivy::query::{BooleanQuery, Occur, RangeQuery, TermQuery};
    use tantivy::schema::{FAST, IndexRecordOption, STRING, Schema};
    use tantivy::{Index, Term, doc};

    /// The wrapped range finds what the range finds, alone and intersected
    /// with a word held by half the documents, and it is the one priced lower.
    #[test]
    fn a_scanned_range_matches_as_the_range_and_is_priced_to_drive() {
        let mut builder = Schema::builder();
        let word = builder.add_text_field("word", STRING);
        let day = builder.add_u64_field("day", FAST);
        let index = Index::create_in_ram(builder.build());
        let mut writer: tantivy::IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for n in 0..2_000u64 {
            let text = if n % 2 == 0 { "common" } else { "other" };
            writer
                .add_document(doc!(word => text, day => n % 100))
                .expect("add");
        }
        writer.commit().expect("commit");
        let searcher = index.reader().expect("reader").searcher();
        let range = || -> Box<dyn Query> {
            Box::new(RangeQuery::new(
                std::ops::Bound::Included(Term::from_field_u64(day, 95)),
                std::ops::Bound::Unbounded,
            ))
        };
        let common = || -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(word, "common"),
                IndexRecordOption::Basic,
            ))
        };
        let count = |query: &dyn Query| searcher.search(query, &Count).expect("count");
        assert_eq!(count(&*range()), 100);
        assert_eq!(count(&Scanned(range())), 100);
        let both = |filter: Box<dyn Query>| {
            BooleanQuery::new(vec![(Occur::Must, common()), (Occur::Must, filter)])
        };
        assert_eq!(count(&both(range())), 40);
        assert_eq!(count(&both(Box::new(Scanned(range())))), 40);

        let segment = &searcher.segment_readers()[0];
        let enable = EnableScoring::disabled_from_searcher(&searcher);
        let cost = |query: &dyn Query| {
            query
                .weight(enable)
                .and_then(|weight| weight.scorer(segment, 1.0))
                .expect("scorer")
                .cost()
        };
        let word_cost = cost(&*common());
        assert!(
            cost(&*range()) > word_cost,
            "Tantivy prices the range above the word"
        );
        assert!(
            cost(&Scanned(range())) < word_cost,
            "the scan is priced below the word"
        );
    }
}
