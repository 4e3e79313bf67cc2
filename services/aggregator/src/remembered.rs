//! Analysis that remembers: what each word became through the filters of a
//! language (lowercased, accents, stemmed, folded) is worked out once per
//! analyzer and then looked up. Words follow Zipf's law, so nearly every
//! token is one seen before; analysis was a quarter of indexing a post.
//!
//! Words and what they became sit side by side in one arena, and the table
//! holds only their hashes and places: a lookup touches one small entry and
//! one short run of bytes, not three heap allocations.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use tantivy::tokenizer::{TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered by one analyzer; past it, it forgets them all.
const REMEMBERED: usize = 65_536;
/// Bytes of words and results remembered, at most.
const ARENA_MAX: usize = 4 * 1024 * 1024;

/// Replaces each token's text by what `word` (an analyzer of one word:
/// the filters after tokenizing) makes of it, remembered.
#[derive(Clone)]
pub struct Remembered {
    word: TextAnalyzer,
}

impl Remembered {
    /// `word` must turn one word into one token (filters that drop or
    /// split tokens do not belong after this one's place).
    pub fn new(word: TextAnalyzer) -> Self {
        Remembered { word }
    }
}

impl TokenFilter for Remembered {
    type Tokenizer<T: Tokenizer> = RememberedFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> RememberedFilter<T> {
        RememberedFilter {
            word: self.word,
            memo: Memo::default(),
            inner: tokenizer,
        }
    }
}

pub struct RememberedFilter<T> {
    word: TextAnalyzer,
    memo: Memo,
    inner: T,
}

/// A copy starts with nothing remembered (analyzers are copied for each
/// segment and each query).
impl<T: Clone> Clone for RememberedFilter<T> {
    fn clone(&self) -> Self {
        RememberedFilter {
            word: self.word.clone(),
            memo: Memo::default(),
            inner: self.inner.clone(),
        }
    }
}

impl<T: Tokenizer> Tokenizer for RememberedFilter<T> {
    type TokenStream<'a> = RememberedStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        RememberedStream {
            tail: self.inner.token_stream(text),
            word: &mut self.word,
            memo: &mut self.memo,
        }
    }
}

pub struct RememberedStream<'a, T> {
    tail: T,
    word: &'a mut TextAnalyzer,
    memo: &'a mut Memo,
}

impl<T: TokenStream> TokenStream for RememberedStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        let hash = self.memo.hash(&token.text);
        if let Some(result) = self.memo.get(hash, &token.text) {
            token.text.clear();
            token.text.push_str(result);
            return true;
        }
        let mut stream = self.word.token_stream(&token.text);
        let result = if stream.advance() {
            stream.token().text.clone()
        } else {
            String::new()
        };
        drop(stream);
        self.memo.insert(hash, &token.text, &result);
        token.text = result;
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Words and their results, side by side in `arena`.
#[derive(Default)]
struct Memo {
    hasher: hashbrown::DefaultHashBuilder,
    table: HashTable<Entry>,
    arena: String,
}

#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    /// The word at `start`, its result right after it.
    start: u32,
    word_len: u16,
    result_len: u16,
}

impl Memo {
    fn hash(&self, word: &str) -> u64 {
        self.hasher.hash_one(word.as_bytes())
    }

    fn get(&self, hash: u64, word: &str) -> Option<&str> {
        let arena = &self.arena;
        let entry = self.table.find(hash, |entry| {
            let start = entry.start as usize;
            entry.hash == hash
                && arena.get(start..start + usize::from(entry.word_len)) == Some(word)
        })?;
        let start = entry.start as usize + usize::from(entry.word_len);
        arena.get(start..start + usize::from(entry.result_len))
    }

    fn insert(&mut self, hash: u64, word: &str, result: &str) {
        let (Ok(word_len), Ok(result_len)) =
            (u16::try_from(word.len()), u16::try_from(result.len()))
        else {
            return;
        };
        if self.table.len() >= REMEMBERED
            || self.arena.len() + word.len() + result.len() > ARENA_MAX
        {
            self.table.clear();
            self.arena.clear();
        }
        let entry = Entry {
            hash,
            start: self.arena.len() as u32,
            word_len,
            result_len,
        };
        self.arena.push_str(word);
        self.arena.push_str(result);
        self.table.insert_unique(hash, entry, |entry| entry.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{
        AsciiFoldingFilter, Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer,
    };

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push((stream.token().position, stream.token().text.clone()));
        }
        tokens
    }

    #[test]
    fn remembered_analysis_equals_the_analysis_it_remembers() {
        let word = || {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(Stemmer::new(Language::Spanish))
                .filter(AsciiFoldingFilter)
                .build()
        };
        let mut remembered = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(Remembered::new(word()))
            .build();
        let mut computed = word();
        let text = "Organizaciones ORGANIZANDO organización; Migración, migraciones y ñandúes";
        // The first time computed, then remembered.
        for _ in 0..3 {
            assert_eq!(tokens(&mut remembered, text), tokens(&mut computed, text));
        }
    }

    #[test]
    fn forgets_everything_when_full_and_still_answers() {
        let mut memo = Memo::default();
        let words: Vec<String> = (0..REMEMBERED + 10).map(|n| format!("w{n}")).collect();
        for word in &words {
            memo.insert(memo.hash(word), word, &word.to_uppercase());
        }
        assert!(memo.table.len() <= REMEMBERED);
        let last = words.last().unwrap();
        assert_eq!(memo.get(memo.hash(last), last), Some(&*last.to_uppercase()));
        assert_eq!(memo.get(memo.hash(&words[0]), &words[0]), None);
    }
}
