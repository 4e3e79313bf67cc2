//! A stemmer that remembers: Tantivy's `Stemmer` filter, but each word's
//! stem is computed once per analyzer. Words follow Zipf's law, so nearly
//! every token is one seen before, and stemming was a fifth of the cost of
//! indexing a post.

use rust_stemmers::Algorithm;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered by one analyzer; past it, it forgets them all.
const REMEMBERED: usize = 65_536;

/// Stems lowercased tokens with the Snowball algorithm of a language.
#[derive(Clone, Copy)]
pub struct CachedStemmer {
    algorithm: Algorithm,
}

impl CachedStemmer {
    pub fn new(algorithm: Algorithm) -> Self {
        CachedStemmer { algorithm }
    }
}

impl TokenFilter for CachedStemmer {
    type Tokenizer<T: Tokenizer> = CachedStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CachedStemmerFilter<T> {
        CachedStemmerFilter {
            algorithm: self.algorithm,
            stems: fnv::FnvHashMap::default(),
            inner: tokenizer,
        }
    }
}

pub struct CachedStemmerFilter<T> {
    algorithm: Algorithm,
    stems: fnv::FnvHashMap<String, String>,
    inner: T,
}

/// A copy starts with nothing remembered (analyzers are copied for each
/// segment and each query).
impl<T: Clone> Clone for CachedStemmerFilter<T> {
    fn clone(&self) -> Self {
        CachedStemmerFilter {
            algorithm: self.algorithm,
            stems: fnv::FnvHashMap::default(),
            inner: self.inner.clone(),
        }
    }
}

impl<T: Tokenizer> Tokenizer for CachedStemmerFilter<T> {
    type TokenStream<'a> = CachedStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        if self.stems.len() >= REMEMBERED {
            self.stems.clear();
        }
        CachedStemmerStream {
            tail: self.inner.token_stream(text),
            stemmer: rust_stemmers::Stemmer::create(self.algorithm),
            stems: &mut self.stems,
        }
    }
}

pub struct CachedStemmerStream<'a, T> {
    tail: T,
    stemmer: rust_stemmers::Stemmer,
    stems: &'a mut fnv::FnvHashMap<String, String>,
}

impl<T: TokenStream> TokenStream for CachedStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        match self.stems.get(&token.text) {
            Some(stem) => {
                token.text.clear();
                token.text.push_str(stem);
            }
            None => {
                let stem = self.stemmer.stem(&token.text).into_owned();
                let word = std::mem::replace(&mut token.text, stem.clone());
                self.stems.insert(word, stem);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};

    #[test]
    fn remembered_stems_equal_computed_ones() {
        let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(CachedStemmer::new(Algorithm::English))
            .build();
        let stemmer = rust_stemmers::Stemmer::create(Algorithm::English);
        let text = "Organizing tenants organize; tenants organizing organized TENANTS";
        for _ in 0..2 {
            let mut stream = analyzer.token_stream(text);
            let mut stems = Vec::new();
            while stream.advance() {
                stems.push(stream.token().text.clone());
            }
            let expected: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|word| !word.is_empty())
                .map(|word| stemmer.stem(&word.to_lowercase()).into_owned())
                .collect();
            assert_eq!(stems, expected);
        }
    }
}
