//! Analysis that remembers: what each word became through the filters of a
//! language (lowercased, accents, stemmed, folded) is worked out once per
//! analyzer and then looked up. Words follow Zipf's law, so nearly every
//! token is one seen before; analysis was a quarter of indexing a post.
//!
//! A word and what it became sit side by side in a 32-byte slot, four slots
//! to a 128-byte set: a lookup reads one set, two adjacent cache lines. (A
//! table of entries pointing into an arena of words read three places, each
//! a cache miss beside the index's own tables: a sixth of a rebuild's
//! indexing threads.)

use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use tantivy::tokenizer::{TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer};

/// Replaces each token's text by what `word` (an analyzer of one word:
/// the filters after tokenizing) makes of it, remembered.
#[derive(Clone)]
pub struct Remembered {
    word: TextAnalyzer,
    shared: Option<Arc<Mutex<Memo>>>,
}

impl Remembered {
    /// `word` must turn one word into one token (filters that drop or
    /// split tokens do not belong after this one's place). Each copy of the
    /// analyzer remembers for itself: an indexing thread keeps its copy for
    /// a whole segment.
    pub fn new(word: TextAnalyzer) -> Self {
        Remembered { word, shared: None }
    }

    /// As `new`, but every copy of the analyzer shares one memory. For
    /// analyzers copied for each use, such as a search's snippets (Tantivy
    /// copies the analyzer for every snippet): each copy would otherwise
    /// stem every word of a hit's text again. A copy that finds the memory
    /// in use by another text remembers for itself meanwhile.
    pub fn shared(word: TextAnalyzer) -> Self {
        Remembered {
            word,
            shared: Some(Arc::default()),
        }
    }
}

impl TokenFilter for Remembered {
    type Tokenizer<T: Tokenizer> = RememberedFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> RememberedFilter<T> {
        RememberedFilter {
            word: self.word,
            memo: Memo::default(),
            shared: self.shared,
            inner: tokenizer,
        }
    }
}

pub struct RememberedFilter<T> {
    word: TextAnalyzer,
    memo: Memo,
    shared: Option<Arc<Mutex<Memo>>>,
    inner: T,
}

/// A copy starts with nothing remembered of its own (analyzers are copied
/// for each segment and each query); a shared memory stays shared.
impl<T: Clone> Clone for RememberedFilter<T> {
    fn clone(&self) -> Self {
        RememberedFilter {
            word: self.word.clone(),
            memo: Memo::default(),
            shared: self.shared.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<T: Tokenizer> Tokenizer for RememberedFilter<T> {
    type TokenStream<'a> = RememberedStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        // The shared memory for the whole text, taken once; never waited for.
        let memo = match self.shared.as_deref().map(Mutex::try_lock) {
            Some(Ok(guard)) => MemoRef::Shared(guard),
            // A panic while it was held leaves whole slots: still usable.
            Some(Err(TryLockError::Poisoned(poisoned))) => MemoRef::Shared(poisoned.into_inner()),
            Some(Err(TryLockError::WouldBlock)) | None => MemoRef::Own(&mut self.memo),
        };
        RememberedStream {
            tail: self.inner.token_stream(text),
            word: &mut self.word,
            memo,
        }
    }
}

/// The memory a token stream uses: its analyzer's own, or the shared one.
enum MemoRef<'a> {
    Own(&'a mut Memo),
    Shared(MutexGuard<'a, Memo>),
}

impl Deref for MemoRef<'_> {
    type Target = Memo;

    fn deref(&self) -> &Memo {
        match self {
            MemoRef::Own(memo) => memo,
            MemoRef::Shared(guard) => guard,
        }
    }
}

impl DerefMut for MemoRef<'_> {
    fn deref_mut(&mut self) -> &mut Memo {
        match self {
            MemoRef::Own(memo) => memo,
            MemoRef::Shared(guard) => guard,
        }
    }
}

pub struct RememberedStream<'a, T> {
    tail: T,
    word: &'a mut TextAnalyzer,
    memo: MemoRef<'a>,
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

/// Bytes of a word and its result that one slot holds; a longer pair is
/// worked out each time (a word of more than 15 letters is rare).
const SLOT_BYTES: usize = 30;
/// Slots of a set: two cache lines side by side (the second is fetched with
/// the first).
const WAYS: usize = 4;
/// Sets of a new table; it grows fourfold, keeping what it holds, each time
/// it has taken as many words as it has sets, up to `SETS_MAX`. A query's
/// analyzers stay small.
const SETS_FIRST: usize = 16;
/// 16,384 sets of 128 bytes: 2 MiB, 65,536 words.
const SETS_MAX: usize = 16_384;

/// A word and what it became, in one slot.
#[derive(Clone, Copy)]
struct Slot {
    word_len: u8,
    result_len: u8,
    bytes: [u8; SLOT_BYTES],
}

impl Slot {
    const EMPTY: Slot = Slot {
        word_len: 0,
        result_len: 0,
        bytes: [0; SLOT_BYTES],
    };

    fn word(&self) -> &[u8] {
        &self.bytes[..usize::from(self.word_len)]
    }

    fn result(&self) -> Option<&str> {
        let start = usize::from(self.word_len);
        std::str::from_utf8(&self.bytes[start..start + usize::from(self.result_len)]).ok()
    }
}

/// The slots a word may sit in, the one used last first. A lookup reads
/// one set: a table of entries pointing into an arena of words read three
/// places, each a cache miss beside the index's own tables.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Set([Slot; WAYS]);

impl Set {
    const EMPTY: Set = Set([Slot::EMPTY; WAYS]);

    /// Puts `slot` first; the one used longest ago gives way.
    fn push(&mut self, slot: Slot) {
        self.0.rotate_right(1);
        self.0[0] = slot;
    }
}

/// Words and their results: a set-associative cache.
#[derive(Default)]
struct Memo {
    hasher: hashbrown::DefaultHashBuilder,
    sets: Vec<Set>,
    /// Words taken since the table last grew.
    taken: usize,
}

impl Memo {
    fn hash(&self, word: &str) -> u64 {
        self.hasher.hash_one(word.as_bytes())
    }

    fn set(&mut self, hash: u64) -> Option<&mut Set> {
        let mask = self.sets.len().checked_sub(1)?;
        self.sets.get_mut(hash as usize & mask)
    }

    fn get(&mut self, hash: u64, word: &str) -> Option<&str> {
        let word = word.as_bytes();
        if word.is_empty() {
            return None;
        }
        let set = self.set(hash)?;
        let found = set.0.iter().position(|slot| slot.word() == word)?;
        // Used again: the first of its set now.
        set.0[..=found].rotate_right(1);
        set.0[0].result()
    }

    fn insert(&mut self, hash: u64, word: &str, result: &str) {
        let length = word.len() + result.len();
        if word.is_empty() || length > SLOT_BYTES {
            return;
        }
        if self.sets.len() < SETS_MAX && self.taken >= self.sets.len() {
            self.grow();
        }
        self.taken += 1;
        let mut slot = Slot {
            // Both fit in a u8: their sum is at most SLOT_BYTES.
            word_len: word.len() as u8,
            result_len: result.len() as u8,
            bytes: [0; SLOT_BYTES],
        };
        slot.bytes[..word.len()].copy_from_slice(word.as_bytes());
        slot.bytes[word.len()..length].copy_from_slice(result.as_bytes());
        if let Some(set) = self.set(hash) {
            set.push(slot);
        }
    }

    /// Four times the sets, the words held moved over (the most recently
    /// used last, so that they come first again).
    fn grow(&mut self) {
        let sets = (self.sets.len() * 4).clamp(SETS_FIRST, SETS_MAX);
        let old = std::mem::replace(&mut self.sets, vec![Set::EMPTY; sets]);
        self.taken = 0;
        let mask = sets - 1;
        for set in &old {
            for slot in set.0.iter().rev().filter(|slot| slot.word_len > 0) {
                let hash = self.hasher.hash_one(slot.word());
                self.sets[hash as usize & mask].push(*slot);
            }
        }
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

    /// A Spanish word analyzed: lowercased, stemmed, folded.
    fn word() -> TextAnalyzer {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::Spanish))
            .filter(AsciiFoldingFilter)
            .build()
    }

    const TEXT: &str = "Organizaciones ORGANIZANDO organización; Migración, migraciones y ñandúes";

    #[test]
    fn remembered_analysis_equals_the_analysis_it_remembers() {
        let mut remembered = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(Remembered::new(word()))
            .build();
        let mut computed = word();
        let text = TEXT;
        // The first time computed, then remembered.
        for _ in 0..3 {
            assert_eq!(tokens(&mut remembered, text), tokens(&mut computed, text));
        }
    }

    /// Copies of a shared analyzer (Tantivy's copy for each snippet) find
    /// what an earlier copy remembered, and a copy that finds the memory in
    /// use analyzes alike without waiting for it.
    #[test]
    fn copies_of_a_shared_analyzer_remember_together_and_never_wait() {
        let memory: Arc<Mutex<Memo>> = Arc::default();
        let shared = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(Remembered {
                word: word(),
                shared: Some(memory.clone()),
            })
            .build();
        let text = TEXT;
        let expected = tokens(&mut word(), text);
        assert_eq!(tokens(&mut shared.clone(), text), expected);
        {
            let mut memo = memory.lock().unwrap();
            let hash = memo.hash("Organizaciones");
            assert_eq!(memo.get(hash, "Organizaciones"), Some("organiz"));
        }
        // Another copy, while someone holds the memory.
        let held = memory.lock().unwrap();
        let (done, outcome) = std::sync::mpsc::channel();
        let copy = shared.clone();
        std::thread::spawn(move || {
            let mut copy = copy;
            let _ = done.send(tokens(&mut copy, text));
        });
        let analyzed = outcome
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a copy analyzes without waiting for the memory");
        drop(held);
        assert_eq!(analyzed, expected);
    }

    #[test]
    fn a_set_keeps_the_words_used_last() {
        let mut memo = Memo::default();
        for word in ["a", "b", "c", "d"] {
            memo.insert(7, word, &word.to_uppercase());
        }
        assert_eq!(memo.get(7, "a"), Some("A"), "used again: the first now");
        memo.insert(7, "e", "E");
        assert_eq!(memo.get(7, "b"), None, "the one used longest ago gave way");
        for word in ["a", "c", "d", "e"] {
            assert_eq!(memo.get(7, word), Some(&*word.to_uppercase()));
        }
    }

    #[test]
    fn grows_to_its_limit_and_still_answers() {
        let mut memo = Memo::default();
        assert_eq!(memo.get(1, "w"), None, "nothing yet, nothing allocated");
        assert!(memo.sets.is_empty());
        let words: Vec<String> = (0..SETS_MAX * 8).map(|n| format!("w{n}")).collect();
        for word in &words[..SETS_FIRST] {
            memo.insert(memo.hash(word), word, &word.to_uppercase());
        }
        let held = |memo: &mut Memo| -> Vec<String> {
            words[..SETS_FIRST]
                .iter()
                .filter(|word| memo.get(memo.hash(word), word).is_some())
                .cloned()
                .collect()
        };
        let before = held(&mut memo);
        assert!(!before.is_empty());
        memo.grow();
        assert_eq!(memo.sets.len(), SETS_FIRST * 4);
        assert_eq!(held(&mut memo), before, "growing keeps what it held");
        for word in &words[SETS_FIRST..] {
            memo.insert(memo.hash(word), word, &word.to_uppercase());
        }
        assert_eq!(memo.sets.len(), SETS_MAX);
        let last = words.last().unwrap();
        assert_eq!(memo.get(memo.hash(last), last), Some(&*last.to_uppercase()));
        // A word and result too long for a slot are not kept.
        let long = "internacionalizaciones";
        memo.insert(memo.hash(long), long, "internacionaliz");
        assert_eq!(memo.get(memo.hash(long), long), None);
    }
}
