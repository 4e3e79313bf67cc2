//! BM25's statistics for one search, each looked up once.
//!
//! A search builds several weights over the same terms — the words ranked,
//! then a snippet generator a field — and each asked every segment's term
//! dictionary for every term's document frequency again. With a few dozen
//! segments those lookups were a fifth of a common word's search.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tantivy::collector::Collector;
use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Score, Searcher, Term};

/// The statistics of `searcher`, remembered for the length of one search.
pub(crate) struct Statistics<'a> {
    searcher: &'a Searcher,
    doc_freqs: RefCell<HashMap<Term, u64>>,
    tokens: RefCell<HashMap<Field, u64>>,
}

impl<'a> Statistics<'a> {
    pub(crate) fn new(searcher: &'a Searcher) -> Self {
        Statistics {
            searcher,
            doc_freqs: RefCell::default(),
            tokens: RefCell::default(),
        }
    }

    pub(crate) fn searcher(&self) -> &'a Searcher {
        self.searcher
    }

    /// `searcher.search`, its scores from these statistics.
    pub(crate) fn search<C: Collector>(
        &self,
        query: &dyn Query,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        self.searcher
            .search_with_statistics_provider(query, collector, self)
    }

    /// What `SnippetGenerator::create` makes (terms weighed by how rare they
    /// are, those nowhere left out), from these statistics, analyzing the
    /// text with `tokenizer` (the field's analysis).
    pub(crate) fn snippets(
        &self,
        query: &dyn Query,
        field: Field,
        tokenizer: TextAnalyzer,
        max_num_chars: usize,
    ) -> tantivy::Result<SnippetGenerator> {
        let mut terms: BTreeSet<&Term> = BTreeSet::new();
        query.query_terms(&mut |term, _| {
            if term.field() == field {
                terms.insert(term);
            }
        });
        let mut weighed: BTreeMap<String, Score> = BTreeMap::new();
        for term in terms {
            let value = term.value();
            let Some(text) = value.as_str() else {
                continue;
            };
            let doc_freq = self.doc_freq(term)?;
            if doc_freq > 0 {
                weighed.insert(text.to_owned(), 1.0 / (1.0 + doc_freq as Score));
            }
        }
        Ok(SnippetGenerator::new(
            weighed,
            tokenizer,
            field,
            max_num_chars,
        ))
    }
}

impl Bm25StatisticsProvider for Statistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if let Some(tokens) = self.tokens.borrow().get(&field) {
            return Ok(*tokens);
        }
        let tokens = Bm25StatisticsProvider::total_num_tokens(self.searcher, field)?;
        self.tokens.borrow_mut().insert(field, tokens);
        Ok(tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Bm25StatisticsProvider::total_num_docs(self.searcher)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(doc_freq) = self.doc_freqs.borrow().get(term) {
            return Ok(*doc_freq);
        }
        let doc_freq = self.searcher.doc_freq(term)?;
        self.doc_freqs.borrow_mut().insert(term.clone(), doc_freq);
        Ok(doc_freq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, Occur, TermQuery};
    use tantivy::schema::{IndexRecordOption, STORED, Schema, TEXT};
    use tantivy::{Index, TantivyDocument, doc};

    #[test]
    fn scores_and_snippets_are_those_of_the_searcher_itself() {
        let mut builder = Schema::builder();
        let body = builder.add_text_field("body", TEXT | STORED);
        let index = Index::create_in_ram(builder.build());
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        // Several segments, the words in each at different rates.
        for segment in 0..3 {
            for n in 0..20 {
                let text = match (n + segment) % 4 {
                    0 => "march for housing, march again",
                    1 => "housing now",
                    2 => "a march",
                    _ => "nothing here",
                };
                writer.add_document(doc!(body => text)).unwrap();
            }
            writer.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() > 1);
        let term = |word: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(body, word),
                IndexRecordOption::WithFreqs,
            ))
        };
        let query = BooleanQuery::new(vec![
            (Occur::Should, term("march")),
            (Occur::Should, term("housing")),
            (Occur::Should, term("absent")),
        ]);
        let statistics = Statistics::new(&searcher);
        let collector = TopDocs::with_limit(100).order_by_score();
        // Twice: the second time from what was remembered.
        for _ in 0..2 {
            let remembered = statistics.search(&query, &collector).unwrap();
            let direct = searcher.search(&query, &collector).unwrap();
            assert_eq!(remembered, direct);
        }
        assert_eq!(statistics.doc_freqs.borrow().len(), 3);
        let tokenizer = searcher.index().tokenizer_for_field(body).unwrap();
        let ours = statistics.snippets(&query, body, tokenizer, 150).unwrap();
        let theirs = SnippetGenerator::create(&searcher, &query, body).unwrap();
        for (_, address) in searcher.search(&query, &collector).unwrap() {
            let document: TantivyDocument = searcher.doc(address).unwrap();
            assert_eq!(
                ours.snippet_from_doc(&document).to_html(),
                theirs.snippet_from_doc(&document).to_html()
            );
        }
    }
}
