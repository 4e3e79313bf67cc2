//! What people type, as a Tantivy query: words (all must match, in any
//! language's fields), `"phrases"` and `-exclusions`.
//!
//! Two choices keep searches fast at a million documents:
//! - a word's alternatives (title and body in English, Spanish and plain)
//!   are joined by a [`SeekUnion`], which jumps straight to a document when
//!   a selective filter (a network, a site, a date window) leads; Tantivy's
//!   own union buffers a window of 4,096 documents on each such jump;
//! - a phrase of two common words is one term of the pairs fields
//!   (adjacent common words, indexed as one number, see `pairs`) instead of
//!   an intersection of two postings whose positions are compared; longer
//!   phrases need their pairs and are then checked word by word; phrases
//!   with a rarer word are checked by positions among its few documents.

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, EnableScoring, Explanation, Occur, PhraseQuery,
    Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

use crate::index::SearchIndex;
use crate::pairs::{is_pair, pair_token};

/// Parts of a query looked at; the rest is ignored.
pub const PARTS_MAX: usize = 32;
/// Words of one phrase looked at.
const PHRASE_WORDS_MAX: usize = 16;
/// A title's match counts this much more than the body's.
pub const TITLE_BOOST: Score = 2.0;

/// One word or phrase of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    pub quoted: bool,
    pub excluded: bool,
}

/// Splits what was typed into words, `"quoted phrases"` and `-exclusions`
/// (`-"a phrase"` too). An unclosed quote runs to the end.
pub fn parts(query_text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = query_text.trim();
    while !rest.is_empty() && parts.len() < PARTS_MAX {
        let (excluded, tail) = match rest.strip_prefix('-') {
            Some(tail) if !tail.is_empty() && !tail.starts_with(char::is_whitespace) => {
                (true, tail)
            }
            _ => (false, rest),
        };
        if let Some(quoted) = tail.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let text = quoted[..end].trim();
            if !text.is_empty() {
                parts.push(Part {
                    text: text.to_owned(),
                    quoted: true,
                    excluded,
                });
            }
            rest = quoted.get(end + 1..).unwrap_or("").trim_start();
            continue;
        }
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let (word, after) = tail.split_at(end);
        rest = after.trim_start();
        let word = word.trim_matches('"');
        if !word.is_empty() {
            parts.push(Part {
                text: word.to_owned(),
                quoted: false,
                excluded,
            });
        }
    }
    parts
}

/// The query of `parts` and, for snippets, every term it looks for.
pub struct Built {
    pub query: Box<dyn Query>,
    /// Terms of the title and body fields (no pairs): what is highlighted.
    pub highlight: Box<dyn Query>,
}

impl SearchIndex {
    /// The tokens of `text` through `field`'s analyzer, with positions.
    pub(crate) fn analyze(&self, field: Field, text: &str) -> Vec<(usize, String)> {
        let Ok(mut analyzer) = self.index.tokenizer_for_field(field) else {
            return Vec::new();
        };
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() && tokens.len() < PHRASE_WORDS_MAX {
            let token = stream.token();
            // What was typed is looked up word by word; its pairs are
            // chosen by `by_pairs`.
            if !is_pair(&token.text) {
                tokens.push((token.position, token.text.clone()));
            }
        }
        tokens
    }

    /// A word or phrase in the fields of the language in slot `language`:
    /// one word in the title or the body; several in a row, by their pairs.
    fn in_language(
        &self,
        text: &str,
        language: usize,
        (title, body): (Field, Field),
        highlight: &mut Vec<Term>,
    ) -> Option<Box<dyn Query>> {
        let tokens = self.analyze(title, text);
        for (_, token) in &tokens {
            highlight.push(Term::from_field_text(title, token));
            highlight.push(Term::from_field_text(body, token));
        }
        match tokens.as_slice() {
            [] => None,
            [(_, word)] => Some(Box::new(SeekUnionQuery::new(vec![
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(title, word),
                        IndexRecordOption::WithFreqs,
                    )),
                    TITLE_BOOST,
                )),
                Box::new(TermQuery::new(
                    Term::from_field_text(body, word),
                    IndexRecordOption::WithFreqs,
                )),
            ]))),
            _ => {
                let by_positions = self.phrase_by_positions(&tokens, title, body);
                Some(self.by_pairs(language, (title, body), &tokens, by_positions))
            }
        }
    }

    /// The words of `tokens` in order (a gap where a word was too long to
    /// index is kept), in the title or the body.
    fn phrase_by_positions(
        &self,
        tokens: &[(usize, String)],
        title: Field,
        body: Field,
    ) -> Box<dyn Query> {
        let phrase = |field: Field| -> Box<dyn Query> {
            Box::new(PhraseQuery::new_with_offset(
                tokens
                    .iter()
                    .map(|(position, token)| {
                        (position - tokens[0].0, Term::from_field_text(field, token))
                    })
                    .collect(),
            ))
        };
        Box::new(SeekUnionQuery::new(vec![
            Box::new(BoostQuery::new(phrase(title), TITLE_BOOST)),
            phrase(body),
        ]))
    }

    /// A phrase sped up by its pairs of common words (see `pairs`):
    /// documents paired since every such pair was common hold them as
    /// terms; earlier documents, and phrases without such pairs, are checked
    /// by positions (`by_positions`).
    fn by_pairs(
        &self,
        language: usize,
        (title, body): (Field, Field),
        tokens: &[(usize, String)],
        by_positions: Box<dyn Query>,
    ) -> Box<dyn Query> {
        let consecutive = tokens.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1);
        if !consecutive {
            return by_positions;
        }
        let common = self.common_words();
        let mut since = 0;
        let mut pairs: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for pair in tokens.windows(2) {
            let Some(version) = common.pair_since(language, &pair[0].1, &pair[1].1) else {
                continue;
            };
            since = since.max(version);
            let token = pair_token(&pair[0].1, &pair[1].1);
            let in_field = |field: Field| -> Box<dyn Query> {
                Box::new(TermQuery::new(
                    Term::from_field_text(field, &token),
                    IndexRecordOption::WithFreqs,
                ))
            };
            pairs.push((
                Occur::Must,
                Box::new(SeekUnionQuery::new(vec![
                    Box::new(BoostQuery::new(in_field(title), TITLE_BOOST)),
                    in_field(body),
                ])),
            ));
        }
        if pairs.is_empty() {
            return by_positions;
        }
        // Two words: their pair is the phrase; more: the pairs narrow, the
        // positions decide.
        let paired: Box<dyn Query> = if tokens.len() == 2 {
            pairs.remove(0).1
        } else {
            pairs.push((Occur::Must, by_positions.box_clone()));
            Box::new(BooleanQuery::new(pairs))
        };
        Box::new(SeekUnionQuery::new(vec![
            paired,
            self.paired_before(since, by_positions),
        ]))
    }

    /// `by_positions` among the documents paired before version `since`
    /// of the common words (they hold no pair term of it).
    fn paired_before(&self, since: u64, by_positions: Box<dyn Query>) -> Box<dyn Query> {
        let earlier: Vec<Box<dyn Query>> = (0..since)
            .map(|version| {
                Box::new(TermQuery::new(
                    Term::from_field_u64(self.fields.pairs_list, version),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>
            })
            .collect();
        Box::new(BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(tantivy::query::ConstScoreQuery::new(
                    Box::new(SeekUnionQuery::new(earlier)),
                    0.0,
                )),
            ),
            (Occur::Must, by_positions),
        ]))
    }

    /// For ranking a phrase of two words alone: where their pair is common,
    /// its terms (title boosted, body, in each such language) as one flat
    /// union that Tantivy ranks by block-max WAND, and apart from it the
    /// documents found otherwise (paired earlier, or other languages, by
    /// positions). The nested unions of `words_query` score every match —
    /// "of the" is in most documents. The same matches with the same
    /// scores, but for a document matched both ways (a site, whose name is
    /// indexed in two languages), ranked by its pair terms only. `None` for
    /// anything but one phrase of two words paired in some language.
    pub(crate) fn phrase_ranking(&self, query_text: &str) -> Option<Box<dyn Query>> {
        let parts = parts(query_text);
        let [part] = parts.as_slice() else {
            return None;
        };
        if part.excluded || !part.quoted {
            return None;
        }
        let common = self.common_words();
        let mut flat: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut otherwise: Vec<Box<dyn Query>> = Vec::new();
        let mut highlight = Vec::new();
        for (language, (title, body)) in self.fields.languages().into_iter().enumerate() {
            let tokens = self.analyze(title, &part.text);
            let paired = match tokens.as_slice() {
                [(first_at, first), (second_at, second)] if *second_at == first_at + 1 => common
                    .pair_since(language, first, second)
                    .map(|since| (since, pair_token(first, second))),
                _ => None,
            };
            let Some((since, term)) = paired else {
                otherwise.extend(self.in_language(
                    &part.text,
                    language,
                    (title, body),
                    &mut highlight,
                ));
                continue;
            };
            let in_field = |field: Field| -> Box<dyn Query> {
                Box::new(TermQuery::new(
                    Term::from_field_text(field, &term),
                    IndexRecordOption::WithFreqs,
                ))
            };
            flat.push((
                Occur::Should,
                Box::new(BoostQuery::new(in_field(title), TITLE_BOOST)),
            ));
            flat.push((Occur::Should, in_field(body)));
            otherwise
                .push(self.paired_before(since, self.phrase_by_positions(&tokens, title, body)));
        }
        if flat.is_empty() {
            return None;
        }
        let flat: Box<dyn Query> = Box::new(BooleanQuery::new(flat));
        let otherwise: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(SeekUnionQuery::new(otherwise))),
            (Occur::MustNot, flat.box_clone()),
        ]));
        Some(Box::new(SeekUnionQuery::disjoint(vec![flat, otherwise])))
    }

    /// A word or phrase in any language.
    pub(crate) fn part_query(
        &self,
        text: &str,
        highlight: &mut Vec<Term>,
    ) -> Option<Box<dyn Query>> {
        let alternatives: Vec<Box<dyn Query>> = self
            .fields
            .languages()
            .into_iter()
            .enumerate()
            .filter_map(|(language, fields)| self.in_language(text, language, fields, highlight))
            .collect();
        (!alternatives.is_empty())
            .then(|| Box::new(SeekUnionQuery::new(alternatives)) as Box<dyn Query>)
    }

    /// For ranking one word alone: its terms (the title's boosted, the
    /// body's, in each language) as one flat union, which Tantivy ranks by
    /// block-max WAND — skipping whole blocks of weak matches — where the
    /// nested unions of `words_query` score every match (a common word
    /// matches hundreds of thousands). Same matches, same scores. `None`
    /// for anything but one plain word.
    pub(crate) fn single_word_ranking(&self, query_text: &str) -> Option<Box<dyn Query>> {
        let parts = parts(query_text);
        let [part] = parts.as_slice() else {
            return None;
        };
        if part.excluded || part.quoted {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (title, body) in self.fields.languages() {
            match self.analyze(title, &part.text).as_slice() {
                [] => {}
                [(_, word)] => {
                    let term = |field: Field| -> Box<dyn Query> {
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, word),
                            IndexRecordOption::WithFreqs,
                        ))
                    };
                    clauses.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(term(title), TITLE_BOOST)),
                    ));
                    clauses.push((Occur::Should, term(body)));
                }
                _ => return None,
            }
        }
        (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
    }

    /// The query of what was typed: every word and phrase must match,
    /// exclusions must not. Only exclusions: everything but them.
    pub fn words_query(&self, query_text: &str) -> Built {
        let mut highlight = Vec::new();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for part in parts(query_text) {
            let mut ignored = Vec::new();
            let terms = if part.excluded {
                &mut ignored
            } else {
                &mut highlight
            };
            if let Some(query) = self.part_query(&part.text, terms) {
                let occur = if part.excluded {
                    Occur::MustNot
                } else {
                    Occur::Must
                };
                clauses.push((occur, query));
            }
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(EmptyQuery)
        } else {
            if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        };
        Built {
            query,
            highlight: Box::new(BooleanQuery::new(
                highlight
                    .into_iter()
                    .map(|term| {
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
                                as Box<dyn Query>,
                        )
                    })
                    .collect(),
            )),
        }
    }
}

/// Documents matching any of its queries, scored by the sum of those that
/// match. Unlike Tantivy's buffered union it keeps no window: a jump ahead
/// (`seek`) only jumps each part, which is what an intersection led by a
/// selective filter asks of it.
#[derive(Debug)]
pub struct SeekUnionQuery {
    queries: Vec<Box<dyn Query>>,
    /// No document matches two of them: the best matches are ranked one
    /// query after the other, each pruning as it can (block-max WAND).
    disjoint: bool,
}

impl SeekUnionQuery {
    pub fn new(queries: Vec<Box<dyn Query>>) -> Self {
        SeekUnionQuery {
            queries,
            disjoint: false,
        }
    }

    /// A union of queries no document matches two of.
    pub fn disjoint(queries: Vec<Box<dyn Query>>) -> Self {
        SeekUnionQuery {
            queries,
            disjoint: true,
        }
    }
}

impl Clone for SeekUnionQuery {
    fn clone(&self) -> Self {
        SeekUnionQuery {
            queries: self.queries.iter().map(|query| query.box_clone()).collect(),
            disjoint: self.disjoint,
        }
    }
}

impl Query for SeekUnionQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(SeekUnionWeight {
            weights: self
                .queries
                .iter()
                .map(|query| query.weight(enable_scoring))
                .collect::<tantivy::Result<_>>()?,
            disjoint: self.disjoint,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for query in &self.queries {
            query.query_terms(visitor);
        }
    }
}

struct SeekUnionWeight {
    weights: Vec<Box<dyn Weight>>,
    disjoint: bool,
}

impl Weight for SeekUnionWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorers = Vec::with_capacity(self.weights.len());
        for weight in &self.weights {
            let scorer = weight.scorer(reader, boost)?;
            if scorer.doc() != TERMINATED {
                scorers.push(scorer);
            }
        }
        if scorers.len() == 1 {
            return Ok(scorers.remove(0));
        }
        let doc = scorers
            .iter()
            .map(|scorer| scorer.doc())
            .min()
            .unwrap_or(TERMINATED);
        Ok(Box::new(SeekUnionScorer { scorers, doc }))
    }

    /// The best matches (`callback` says which score they must now beat):
    /// of a disjoint union, each query's in turn, pruned as it can.
    fn for_each_pruning(
        &self,
        mut threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        if self.disjoint {
            for weight in &self.weights {
                let from = threshold;
                weight.for_each_pruning(from, reader, &mut |doc, score| {
                    threshold = callback(doc, score);
                    threshold
                })?;
            }
            return Ok(());
        }
        let mut scorer = self.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            let score = scorer.score();
            if score > threshold {
                threshold = callback(doc, score);
            }
            doc = scorer.advance();
        }
        Ok(())
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        let mut explanation = Explanation::new("sum of the matching alternatives", scorer.score());
        for weight in &self.weights {
            if let Ok(detail) = weight.explain(reader, doc) {
                explanation.add_detail(detail);
            }
        }
        Ok(explanation)
    }
}

struct SeekUnionScorer {
    scorers: Vec<Box<dyn Scorer>>,
    doc: DocId,
}

impl DocSet for SeekUnionScorer {
    fn advance(&mut self) -> DocId {
        let current = self.doc;
        let mut next = TERMINATED;
        for scorer in &mut self.scorers {
            let mut doc = scorer.doc();
            if doc == current {
                doc = scorer.advance();
            }
            next = next.min(doc);
        }
        self.doc = next;
        next
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        let mut next = TERMINATED;
        for scorer in &mut self.scorers {
            let mut doc = scorer.doc();
            if doc < target {
                doc = scorer.seek(target);
            }
            next = next.min(doc);
        }
        self.doc = next;
        next
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.scorers
            .iter()
            .map(|scorer| scorer.size_hint())
            .fold(0u32, u32::saturating_add)
    }
}

impl Scorer for SeekUnionScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        self.scorers
            .iter_mut()
            .filter(|scorer| scorer.doc() == doc)
            .map(|scorer| scorer.score())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::events::{Delivered, Projected};
    use crate::search::SearchFilters;
    use anp_proto::events::v1::PostState;

    fn post(n: u32, network: &str, lang: &str, title: &str, body: &str) -> Delivered {
        Delivered {
            seq: u64::from(n) + 1,
            event: Projected::Post {
                state: PostState {
                    post_id: format!("00000000-0000-0000-0000-{n:012}"),
                    network_id: format!("11111111-1111-1111-1111-{:0>12}", network.len()),
                    network_slug: network.into(),
                    site_id: "22222222-2222-2222-2222-222222222222".into(),
                    site_slug: "site".into(),
                    title: title.into(),
                    body_html: format!("<p>{body}</p>"),
                    lang: lang.into(),
                    published_at: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000 + i64::from(n),
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                version: 1,
            },
            meta: None,
            traceparent: String::new(),
        }
    }

    fn titles(index: &SearchIndex, query: &str, network: Option<&str>) -> Vec<String> {
        let filters = SearchFilters {
            network_slug: network.map(str::to_owned),
            audiences: Arc::new(vec!["public".into()]),
            ..Default::default()
        };
        let mut titles: Vec<String> = index
            .search(query, &filters, 100, None)
            .unwrap()
            .hits
            .into_iter()
            .map(|hit| hit.title)
            .collect();
        titles.sort();
        titles
    }

    #[test]
    fn phrases_need_their_words_adjacent_in_order_within_one_field() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        index
            .apply(&[
                post(1, "net", "en", "A", "The tenants union met on Sunday"),
                post(2, "net", "en", "B", "A union of tenants"),
                post(3, "net", "en", "C tenant", "union hall"),
                post(4, "net", "es", "D", "La organización comunitaria crece"),
                post(
                    5,
                    "net",
                    "en",
                    "E",
                    "tenant averyveryveryveryveryveryverylongwordthatisdropped union",
                ),
            ])
            .unwrap();
        assert_eq!(titles(&index, r#""tenant union""#, None), ["A"]);
        assert_eq!(
            titles(&index, r#""union tenant""#, None),
            Vec::<String>::new()
        );
        assert_eq!(titles(&index, r#""tenants union met""#, None), ["A"]);
        assert_eq!(
            titles(&index, r#""tenant union sunday""#, None),
            Vec::<String>::new()
        );
        assert_eq!(titles(&index, r#""organizacion comunitaria""#, None), ["D"]);
        assert_eq!(titles(&index, "union -met", None), ["B", "C tenant", "E"]);
        assert_eq!(
            titles(&index, r#"union -"tenant union""#, None),
            ["B", "C tenant", "E"]
        );
        assert_eq!(titles(&index, "-union", None), ["D"]);
        assert_eq!(
            titles(&index, "tenant union", None),
            ["A", "B", "C tenant", "E"]
        );
        // The hit's snippet marks the phrase's words.
        let filters = SearchFilters {
            audiences: Arc::new(vec!["public".into()]),
            ..Default::default()
        };
        let page = index
            .search(r#""tenants union""#, &filters, 10, None)
            .unwrap();
        assert!(
            page.hits[0].snippet_html.contains("<b>union</b>"),
            "{:?}",
            page.hits[0].snippet_html
        );
    }

    #[test]
    fn phrases_are_found_alike_in_documents_paired_before_and_after_common_words_are_learned() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        // Enough documents to learn common words; `tenant` and `union` are
        // in all of them, never as the phrase.
        let mut batch = vec![post(0, "net", "en", "A", "The tenants union met on Sunday")];
        batch.extend((1..crate::pairs::LEARN_FIRST as u32).map(|n| {
            let body = if n % 2 == 0 {
                "union of tenants"
            } else {
                "tenants and the union"
            };
            post(n, "net", "en", &format!("filler {n}"), body)
        }));
        assert_eq!(index.common_words().version, 0);
        assert_eq!(
            titles(&index, r#""tenant union""#, None),
            Vec::<String>::new()
        );
        index.apply(&batch).unwrap();
        let common = index.common_words();
        assert_eq!(common.version, 1);
        assert_eq!(common.pair_since(0, "tenant", "union"), Some(1));
        let next = crate::pairs::LEARN_FIRST as u32;
        index
            .apply(&[
                post(next, "net", "en", "Z", "tenants union again"),
                post(next + 1, "net", "en", "Y", "the union tenants"),
                post(next + 2, "net", "en", "X", "Tenants union met"),
            ])
            .unwrap();
        // Before learning by positions, after by the pair's term.
        assert_eq!(titles(&index, r#""tenant union""#, None), ["A", "X", "Z"]);
        assert_eq!(titles(&index, r#""union tenant""#, None), ["Y"]);
        assert_eq!(titles(&index, r#""tenants union met""#, None), ["A", "X"]);
        assert_eq!(titles(&index, r#""the union tenants""#, None), ["Y"]);
        // Learned again once the index has doubled; the version a word
        // joined stays.
        let more: Vec<Delivered> = (next + 3..2 * next + 3)
            .map(|n| post(n, "net", "en", &format!("more {n}"), "river garden"))
            .collect();
        index.apply(&more).unwrap();
        let common = index.common_words();
        assert_eq!(common.version, 2);
        assert_eq!(common.pair_since(0, "tenant", "union"), Some(1));
        assert_eq!(common.pair_since(0, "river", "garden"), Some(2));
        assert_eq!(common.pair_since(0, "tenant", "river"), Some(2));
        assert_eq!(titles(&index, r#""tenant union""#, None), ["A", "X", "Z"]);
        assert_eq!(
            titles(&index, r#""garden river""#, None),
            Vec::<String>::new()
        );
        // The list is kept with the index.
        drop(index);
        let (index, rebuilt) = crate::index::SearchIndex::open(dir.path()).unwrap();
        assert!(!rebuilt);
        assert_eq!(index.common_words().version, 2);
        assert_eq!(titles(&index, r#""tenant union""#, None), ["A", "X", "Z"]);
        // Without it the pairs could be misread: the index is rebuilt.
        drop(index);
        let generation = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
        std::fs::remove_file(dir.path().join(generation.trim()).join("common-words.json")).unwrap();
        let (index, rebuilt) = crate::index::SearchIndex::open(dir.path()).unwrap();
        assert!(rebuilt);
        assert_eq!(index.documents(), 0);
        assert_eq!(index.common_words().version, 0);
    }

    #[test]
    fn a_phrase_ranked_by_its_pairs_finds_the_same_best_matches_with_the_same_scores() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        // Documents before the common words are learned (found by
        // positions) and after (by their pair terms), in two languages.
        let post_n = |n: u32| {
            let filler = "word ".repeat((n % 7) as usize);
            match n % 4 {
                0 => post(
                    n,
                    "net",
                    "en",
                    &format!("Rights of the {n}"),
                    &format!("{filler} the rights of the people"),
                ),
                1 => post(
                    n,
                    "net",
                    "en",
                    &format!("Post {n}"),
                    &format!("of {filler} the march of the day of the week"),
                ),
                2 => post(
                    n,
                    "net",
                    "es",
                    &format!("Derechos {n}"),
                    &format!("{filler} la marcha de la gente"),
                ),
                _ => post(
                    n,
                    "net",
                    "fr",
                    &format!("Marche {n}"),
                    "la marche of the day",
                ),
            }
        };
        let first = crate::pairs::LEARN_FIRST as u32;
        index
            .apply(&(0..first).map(post_n).collect::<Vec<_>>())
            .unwrap();
        index
            .apply(&(first..first + 2_000).map(post_n).collect::<Vec<_>>())
            .unwrap();
        let common = index.common_words();
        assert!(common.pair_since(0, "of", "the").is_some());
        assert!(common.pair_since(1, "de", "la").is_some());
        let searcher = index.reader.searcher();
        let top = |query: &dyn Query| {
            let mut top = searcher
                .search(
                    query,
                    &tantivy::collector::TopDocs::with_limit(50).order_by_score(),
                )
                .unwrap();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            top.into_iter()
                .map(|(score, _)| score)
                .collect::<Vec<f32>>()
        };
        let count = |query: &dyn Query| searcher.search(query, &tantivy::collector::Count).unwrap();
        for phrase in [r#""of the""#, r#""de la""#, r#""la marcha""#] {
            let nested = index.words_query(phrase).query;
            let Some(ranking) = index.phrase_ranking(phrase) else {
                assert_eq!(phrase, r#""la marcha""#, "no pair: no ranking of its own");
                continue;
            };
            let expected = top(&*nested);
            assert!(!expected.is_empty(), "{phrase}");
            assert_eq!(top(&*ranking), expected, "{phrase}");
            assert_eq!(count(&*ranking), count(&*nested), "{phrase}");
        }
        for not_a_phrase_of_two in ["of", r#""of the day""#, r#"-"of the""#, "of the"] {
            assert!(
                index.phrase_ranking(not_a_phrase_of_two).is_none(),
                "{not_a_phrase_of_two}"
            );
        }
    }

    #[test]
    fn one_word_ranked_alone_finds_the_same_best_matches_with_the_same_scores() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        let mut posts = Vec::new();
        for n in 0..3_000u32 {
            let (lang, title, body) = match n % 4 {
                0 => ("en", format!("Housing {n}"), "rent rent housing march"),
                1 => (
                    "en",
                    format!("Post {n}"),
                    "a long body about the rent of many homes",
                ),
                2 => ("es", format!("Vivienda {n}"), "alquiler y vivienda digna"),
                _ => ("fr", format!("Logement {n}"), "rent logement"),
            };
            posts.push(post(n, "net", lang, &title, body));
        }
        index.apply(&posts).unwrap();
        let searcher = index.reader.searcher();
        for word in ["rent", "housing", "vivienda", "logement"] {
            let nested = index.words_query(word).query;
            let flat = index.single_word_ranking(word).expect("one word");
            let top = |query: &dyn Query| {
                let mut top = searcher
                    .search(
                        query,
                        &tantivy::collector::TopDocs::with_limit(50).order_by_score(),
                    )
                    .unwrap();
                top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                top
            };
            let (expected, found) = (top(&*nested), top(&*flat));
            assert!(!expected.is_empty(), "{word}");
            let scores = |top: &[(f32, tantivy::DocAddress)]| -> Vec<f32> {
                top.iter().map(|(score, _)| *score).collect()
            };
            assert_eq!(scores(&found), scores(&expected), "{word}");
            let count =
                |query: &dyn Query| searcher.search(query, &tantivy::collector::Count).unwrap();
            assert_eq!(count(&*flat), count(&*nested), "{word}");
        }
        for not_one_word in ["rent housing", "\"rent housing\"", "-rent", ""] {
            assert!(
                index.single_word_ranking(not_one_word).is_none(),
                "{not_one_word}"
            );
        }
    }

    #[test]
    fn documents_built_ahead_are_found_as_documents_built_when_added() {
        let ahead_dir = tempfile::tempdir().unwrap();
        let (ahead, _) = crate::index::SearchIndex::open(ahead_dir.path()).unwrap();
        let now_dir = tempfile::tempdir().unwrap();
        let (now, _) = crate::index::SearchIndex::open(now_dir.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let (other, _) = crate::index::SearchIndex::open(other_dir.path()).unwrap();
        let batch = vec![
            post(
                1,
                "net",
                "en",
                "Tenants",
                "The tenants union met on <b>Sunday</b>",
            ),
            post(
                2,
                "net",
                "es",
                "Vivienda",
                "La organización comunitaria crece",
            ),
            post(3, "net", "en", "Water", "Water march at noon"),
        ];
        // Built ahead for this index, for none, and for another generation
        // (whose documents are built again as they are added).
        let prepared = ahead.prepare(&batch);
        ahead
            .add(&batch, Some(prepared), &mut HashMap::new())
            .unwrap();
        ahead.commit_after(4).unwrap();
        now.add(&batch, None, &mut HashMap::new()).unwrap();
        now.commit_after(4).unwrap();
        let elsewhere = ahead.prepare(&batch);
        other
            .add(&batch, Some(elsewhere), &mut HashMap::new())
            .unwrap();
        other.commit_after(4).unwrap();
        for query in [
            "tenants",
            "\"tenants union\"",
            "organizacion",
            "sunday",
            "march -water",
        ] {
            let expected = titles(&now, query, None);
            assert_eq!(titles(&ahead, query, None), expected, "{query}");
            assert_eq!(titles(&other, query, None), expected, "{query}");
        }
        assert_eq!(titles(&ahead, "sunday", None), ["Tenants"]);
        // A newer version known before the batch is added wins over a
        // document built ahead.
        let mut edited = post(1, "net", "en", "Tenants", "edited");
        if let Projected::Post { version, .. } = &mut edited.event {
            *version = 2;
        }
        let stale = ahead.prepare(&batch[..1]);
        ahead.add(&[edited], None, &mut HashMap::new()).unwrap();
        ahead.commit_after(5).unwrap();
        ahead
            .add(&batch[..1], Some(stale), &mut HashMap::new())
            .unwrap();
        ahead.commit_after(6).unwrap();
        assert_eq!(titles(&ahead, "sunday", None), Vec::<String>::new());
        assert_eq!(titles(&ahead, "edited", None), ["Tenants"]);
    }

    #[test]
    fn only_words_nobody_wrote_are_taken_for_typos() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        index
            .apply(&[
                post(1, "big", "en", "A", "gardening by the river"),
                post(2, "small", "en", "B", "a rover landed"),
            ])
            .unwrap();
        // `river` is a word of the index: in `small` it finds nothing,
        // rather than `rover`.
        assert_eq!(titles(&index, "river", Some("small")), Vec::<String>::new());
        assert_eq!(titles(&index, "rovet", Some("small")), ["B"]);
        assert_eq!(titles(&index, "gardning", None), ["A"]);
    }

    #[test]
    fn a_network_filter_finds_exactly_the_networks_matches() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = crate::index::SearchIndex::open(dir.path()).unwrap();
        let words = ["river", "bread", "housing", "strike", "garden", "choir"];
        let batch: Vec<Delivered> = (0..600u32)
            .map(|n| {
                let network = if n % 7 == 0 { "small" } else { "big" };
                let body = format!(
                    "{} {} and {}",
                    words[n as usize % 6],
                    words[(n as usize / 6) % 6],
                    if n % 2 == 0 {
                        "rent strike"
                    } else {
                        "strike rent"
                    }
                );
                post(
                    n,
                    network,
                    if n % 3 == 0 { "es" } else { "en" },
                    &format!("{n:03}"),
                    &body,
                )
            })
            .collect();
        index.apply(&batch).unwrap();
        for query in [
            "river",
            "bread garden",
            r#""rent strike""#,
            "choir -housing",
        ] {
            for network in ["small", "big"] {
                let expected: Vec<String> = batch
                    .iter()
                    .filter_map(|delivered| match &delivered.event {
                        Projected::Post { state, .. } if state.network_slug == network => {
                            let body = state.body_html.as_str();
                            let matches = match query {
                                "river" => body.contains("river"),
                                "bread garden" => body.contains("bread") && body.contains("garden"),
                                "\"rent strike\"" => body.contains("rent strike"),
                                _ => body.contains("choir") && !body.contains("housing"),
                            };
                            matches.then(|| state.title.clone())
                        }
                        _ => None,
                    })
                    .collect();
                let mut found = titles(&index, query, Some(network));
                if expected.len() > 100 {
                    found.truncate(0);
                    let filters = SearchFilters {
                        network_slug: Some(network.into()),
                        audiences: Arc::new(vec!["public".into()]),
                        ..Default::default()
                    };
                    let page = index.search(query, &filters, 1, None).unwrap();
                    assert_eq!(page.total as usize, expected.len(), "{query} in {network}");
                    continue;
                }
                assert!(!expected.is_empty(), "{query} in {network}");
                assert_eq!(found, expected, "{query} in {network}");
            }
        }
    }

    fn part(text: &str, quoted: bool, excluded: bool) -> Part {
        Part {
            text: text.into(),
            quoted,
            excluded,
        }
    }

    #[test]
    fn words_phrases_and_exclusions_are_told_apart() {
        assert_eq!(
            parts(r#"rent "tenant union" -eviction -"bad landlord" "open"#),
            vec![
                part("rent", false, false),
                part("tenant union", true, false),
                part("eviction", false, true),
                part("bad landlord", true, true),
                part("open", true, false),
            ]
        );
        assert_eq!(
            parts("  - -  \"\" "),
            vec![part("-", false, false), part("-", false, false)]
        );
        assert_eq!(parts(&"w ".repeat(100)).len(), PARTS_MAX);
    }
}
