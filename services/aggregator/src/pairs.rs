//! Pairs of common words: how phrases stay fast without indexing every
//! pair of adjacent words (decision 0017).
//!
//! A phrase of two frequent words ("derechos humanos") matches tens of
//! thousands of documents holding both words, whose positions a phrase query
//! would compare one by one. So two adjacent words that are both *common*
//! are also indexed as one term (as Lucene's common grams, but the index
//! learns which words are common from its own statistics instead of a fixed
//! list). A phrase with a word that is not common is checked by positions:
//! that word's documents are few, so are the candidates.
//!
//! The list of common words only grows, in versions: it is learned once the
//! index holds `LEARN_FIRST` documents, again each time it has doubled since,
//! and saved beside the index before any document uses it. Each document
//! records the version it was paired by (`pairs_list`); a pair whose words
//! both became common by version `v` is a term in every document of version
//! `v` or later, and documents of earlier versions are checked by positions —
//! few, as one of the words was not common when they came. A rebuild learns
//! the list from the index it replaces, so every rebuilt document is paired.

use std::collections::HashMap;
use std::path::Path;

use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, TantivyDocument};

use crate::AggregatorError;

/// The file beside a generation's index holding its common words.
const FILE: &str = "common-words.json";
/// Documents an index holds before it learns common words (until then,
/// phrases are checked by positions, which is fast at this size).
pub const LEARN_FIRST: u64 = 10_000;
/// A word is common in a language when at least this share of the
/// language's documents hold it, or this many, whichever is fewer (a
/// phrase with a word that is not common is checked by positions in at
/// most that many documents, however large the index grows)…
const SHARE: f64 = 0.01;
const DOCS_ENOUGH: u64 = 2_000;
/// …and at least this many.
const DOCS_MIN: u64 = 50;
/// Most common words of a language.
const WORDS_MAX: usize = 20_000;

/// The common words of each language (slots of `Fields::languages`), each
/// with the version of the list it joined.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct CommonWords {
    /// 0: none learned yet.
    pub version: u64,
    /// Documents in the index when the list was last learned.
    pub learned_at: u64,
    pub languages: [HashMap<String, u64>; 3],
}

impl CommonWords {
    /// The list saved in `dir`, or none.
    pub fn load(dir: &Path) -> Result<Self, AggregatorError> {
        match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                AggregatorError::Index(format!("{}: {err}", dir.join(FILE).display()))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(AggregatorError::Index(format!(
                "{}: {err}",
                dir.join(FILE).display()
            ))),
        }
    }

    /// Saves the list in `dir`, atomically (a rename).
    pub fn save(&self, dir: &Path) -> Result<(), AggregatorError> {
        let io = |err: std::io::Error| AggregatorError::Index(format!("{}: {err}", dir.display()));
        let temporary = dir.join(format!("{FILE}.next"));
        let bytes =
            serde_json::to_vec(self).map_err(|err| AggregatorError::Index(err.to_string()))?;
        std::fs::write(&temporary, bytes).map_err(io)?;
        std::fs::rename(&temporary, dir.join(FILE)).map_err(io)
    }

    /// Whether an index of `documents` should learn (again).
    pub fn due(&self, documents: u64) -> bool {
        documents >= LEARN_FIRST.max(self.learned_at.saturating_mul(2))
    }

    /// This list and the words common now in `searcher`'s `bodies` (one
    /// field a language), as the next version.
    pub fn learned(
        &self,
        searcher: &Searcher,
        bodies: [Field; 3],
    ) -> Result<Self, AggregatorError> {
        let mut next = self.clone();
        next.version += 1;
        next.learned_at = searcher.num_docs();
        for (language, field) in bodies.into_iter().enumerate() {
            let mut frequencies: HashMap<Vec<u8>, u64> = HashMap::new();
            for segment in searcher.segment_readers() {
                let inverted = segment.inverted_index(field)?;
                let mut terms = inverted
                    .terms()
                    .stream()
                    .map_err(|err| AggregatorError::Index(err.to_string()))?;
                while terms.advance() {
                    *frequencies.entry(terms.key().to_vec()).or_default() +=
                        u64::from(terms.value().doc_freq);
                }
            }
            // The language's documents: nearly all hold its most frequent
            // word.
            let documents = frequencies.values().copied().max().unwrap_or(0);
            let threshold = DOCS_MIN.max(DOCS_ENOUGH.min((documents as f64 * SHARE) as u64));
            let mut common: Vec<(u64, String)> = frequencies
                .into_iter()
                .filter(|(_, count)| *count >= threshold)
                .filter_map(|(word, count)| String::from_utf8(word).ok().map(|word| (count, word)))
                .collect();
            common.sort_unstable_by(|a, b| b.cmp(a));
            let words = &mut next.languages[language];
            for (_, word) in common {
                if words.len() >= WORDS_MAX {
                    break;
                }
                words.entry(word).or_insert(next.version);
            }
        }
        Ok(next)
    }

    /// The version from which documents hold the pair of `first` and
    /// `second` in `language` as a term; none when a word is not common.
    pub fn pair_since(&self, language: usize, first: &str, second: &str) -> Option<u64> {
        let words = &self.languages[language];
        Some((*words.get(first)?).max(*words.get(second)?))
    }

    /// Adds to `document` the term of each two common words at adjacent
    /// positions of `text` through `analyzer` (the language in slot
    /// `language`); a word too long to index leaves a gap no pair spans.
    pub fn add_pairs(
        &self,
        document: &mut TantivyDocument,
        field: Field,
        analyzer: &mut TextAnalyzer,
        language: usize,
        text: &str,
    ) {
        let words = &self.languages[language];
        if words.is_empty() {
            return;
        }
        let mut stream = analyzer.token_stream(text);
        // Each pair once a document: a repeated term adds nothing to a
        // field without frequencies, but costs the index a lookup.
        let mut terms: Vec<u64> = Vec::new();
        // The last token, if common, and its position.
        let mut previous: Option<(usize, String)> = None;
        while stream.advance() {
            let token = stream.token();
            if !words.contains_key(&token.text) {
                previous = None;
                continue;
            }
            match &mut previous {
                Some((position, word)) => {
                    if token.position == *position + 1 {
                        terms.push(pair_term(language, word, &token.text));
                    }
                    *position = token.position;
                    word.clear();
                    word.push_str(&token.text);
                }
                None => previous = Some((token.position, token.text.clone())),
            }
        }
        terms.sort_unstable();
        terms.dedup();
        for term in terms {
            document.add_u64(field, term);
        }
    }
}

/// The term of a pairs field for two adjacent words (as analyzed) of the
/// language in slot `language`: FNV-1a of the three, a fixed function, as
/// the index outlives the program that wrote it.
pub fn pair_term(language: usize, first: &str, second: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(&[language as u8]);
    hasher.write(first.as_bytes());
    hasher.write(&[0]);
    hasher.write(second.as_bytes());
    hasher.finish()
}
