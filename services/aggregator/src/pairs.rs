//! Pairs of common words: how phrases stay fast without indexing every
//! pair of adjacent words (decisions 0017 and 0022).
//!
//! A phrase of two frequent words ("derechos humanos") matches tens of
//! thousands of documents holding both words, whose positions a phrase query
//! would compare one by one. So two adjacent words that are both *common*
//! are also indexed as one token of the same text field, after the second
//! word (as Lucene's common grams, but the index learns which words are
//! common from its own statistics instead of a fixed list): the text is
//! analyzed once, and a pair has frequencies, so it ranks like a word. A
//! phrase with a word that is not common is checked by positions: that
//! word's documents are few, so are the candidates.
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
use std::sync::{Arc, RwLock};

use tantivy::Searcher;
use tantivy::schema::Field;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

use crate::AggregatorError;

/// The file beside a generation's index holding its common words.
const FILE: &str = "common-words.json";
/// Documents an index holds before it learns common words (until then,
/// phrases are checked by positions, which is fast at this size).
pub const LEARN_FIRST: u64 = 10_000;
/// A word is common in a language when at least this share of the
/// language's documents hold it, or this many, whichever is fewer (a
/// phrase with a word that is not common is checked by positions in at
/// most that many documents, however large the index grows; decision
/// 0023: fewer common words, fewer pair tokens to index)…
const SHARE: f64 = 0.03;
const DOCS_ENOUGH: u64 = 20_000;
/// …and at least this many.
const DOCS_MIN: u64 = 50;
/// Most common words of a language.
const WORDS_MAX: usize = 20_000;

/// Common words and the version each joined (FNV: words are short).
pub type Words = HashMap<String, u64, fnv::FnvBuildHasher>;

/// The common words of each language (slots of `Fields::languages`), each
/// with the version of the list it joined.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct CommonWords {
    /// 0: none learned yet.
    pub version: u64,
    /// Documents in the index when the list was last learned.
    pub learned_at: u64,
    pub languages: [Words; 3],
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
                    if terms.key().starts_with(PAIR_MARK.as_bytes()) {
                        continue;
                    }
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
}

/// What a pair token starts with, and what stands between its words: no
/// word holds it (the tokenizer splits on it), and a word is at least three
/// edits away from a pair, more than typos forgive.
const PAIR_MARK: &str = "\u{1}\u{1}";
const PAIR_SEPARATOR: char = '\u{1}';

/// Whether a token (or a term's text) is a pair of common words.
pub fn is_pair(text: &str) -> bool {
    text.starts_with(PAIR_MARK)
}

/// The token of two adjacent words (as analyzed) in a text field.
pub fn pair_token(first: &str, second: &str) -> String {
    let mut token = String::with_capacity(PAIR_MARK.len() + first.len() + 1 + second.len());
    write_pair(&mut token, first, second);
    token
}

fn write_pair(token: &mut String, first: &str, second: &str) {
    token.clear();
    token.push_str(PAIR_MARK);
    token.push_str(first);
    token.push(PAIR_SEPARATOR);
    token.push_str(second);
}

/// The common words a generation pairs by now, shared by its analyzers and
/// the index (which replaces them as it learns).
pub type SharedCommonWords = Arc<RwLock<Arc<CommonWords>>>;

/// The last filter of a language's analyzer: after each word that is
/// common and follows a common word, the token of the two (`pair_token`,
/// at the first word's position) — as Lucene's common grams, in the same
/// field, so the text is analyzed once and a pair has frequencies to rank
/// by. The common words are read once a text.
#[derive(Clone)]
pub struct Pairs {
    common: SharedCommonWords,
    language: usize,
}

impl Pairs {
    pub fn new(common: SharedCommonWords, language: usize) -> Self {
        Pairs { common, language }
    }
}

impl TokenFilter for Pairs {
    type Tokenizer<T: Tokenizer> = PairsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> PairsFilter<T> {
        PairsFilter {
            pairs: self,
            inner: tokenizer,
        }
    }
}

#[derive(Clone)]
pub struct PairsFilter<T> {
    pairs: Pairs,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for PairsFilter<T> {
    type TokenStream<'a> = PairsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let common = match self.pairs.common.read() {
            Ok(common) => common.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        PairsStream {
            tail: self.inner.token_stream(text),
            active: !common.languages[self.pairs.language].is_empty(),
            common,
            language: self.pairs.language,
            previous: None,
            previous_word: String::new(),
            pair: Token::default(),
            pair_next: false,
            on_pair: false,
        }
    }
}

pub struct PairsStream<T> {
    tail: T,
    common: Arc<CommonWords>,
    language: usize,
    active: bool,
    /// The last token, if common: its position and start (its text in
    /// `previous_word`).
    previous: Option<(usize, usize)>,
    previous_word: String,
    pair: Token,
    /// `pair` comes at the next advance.
    pair_next: bool,
    /// `pair` is the current token.
    on_pair: bool,
}

impl<T: TokenStream> TokenStream for PairsStream<T> {
    fn advance(&mut self) -> bool {
        if self.pair_next {
            self.pair_next = false;
            self.on_pair = true;
            return true;
        }
        self.on_pair = false;
        if !self.tail.advance() {
            return false;
        }
        if !self.active {
            return true;
        }
        let token = self.tail.token();
        if !self.common.languages[self.language].contains_key(&token.text) {
            self.previous = None;
            return true;
        }
        if let Some((position, offset_from)) = self.previous
            && token.position == position + 1
        {
            write_pair(&mut self.pair.text, &self.previous_word, &token.text);
            self.pair.position = position;
            self.pair.offset_from = offset_from;
            self.pair.offset_to = token.offset_to;
            self.pair.position_length = 1;
            self.pair_next = true;
        }
        self.previous = Some((token.position, token.offset_from));
        self.previous_word.clear();
        self.previous_word.push_str(&token.text);
        true
    }

    fn token(&self) -> &Token {
        if self.on_pair {
            &self.pair
        } else {
            self.tail.token()
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        if self.on_pair {
            &mut self.pair
        } else {
            self.tail.token_mut()
        }
    }
}
