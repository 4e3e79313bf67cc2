//! The pages' own words in English and Spanish: Fluent messages
//! (`locales/*.ftl`), the language chosen per request, and `t(...)` for the
//! templates.
//!
//! The language is the reader's choice (the `anp_ui` cookie, set by
//! `/language`), else the first of their browser's languages
//! (`Accept-Language`) that the gateway speaks, else English. What people
//! wrote (posts, names, tags) is shown as written; only the gateway's words
//! change.

use axum::extract::{Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The cookie that keeps a reader's choice of language.
pub const COOKIE: &str = "anp_ui";

/// The longest page address the language links come back to; a longer one
/// goes back to the front page.
const BACK_MAX: usize = 2048;

/// A language of the gateway's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Es];

    /// The BCP 47 code, as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The language's name in itself, for the switcher.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::Es => include_str!("../locales/es.ftl"),
        }
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        static BUNDLES: OnceLock<Vec<FluentBundle<FluentResource>>> = OnceLock::new();
        let bundles = BUNDLES.get_or_init(|| Lang::ALL.into_iter().map(build_bundle).collect());
        &bundles[self as usize]
    }
}

fn build_bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let resource = FluentResource::try_new(lang.source().to_owned())
        .unwrap_or_else(|(_, errors)| panic!("locales/{}.ftl: {errors:?}", lang.code()));
    let id: unic_langid::LanguageIdentifier = lang
        .code()
        .parse()
        .expect("the gateway's language codes parse");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // The words go into HTML, left to right; no bidi isolation marks.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("locales/{}.ftl: {errors:?}", lang.code()));
    bundle
}

/// A value for a message's `{ $name }`.
pub enum Arg<'a> {
    Text(&'a str),
    Number(i64),
}

/// The message `id` in `lang`, with `args`. A message missing from a
/// language is taken from English; missing from English too, its id is
/// shown (and logged) rather than failing the page.
pub fn text_with(lang: Lang, id: &str, args: &[(&str, Arg)]) -> String {
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        match value {
            Arg::Text(text) => fluent_args.set(*name, FluentValue::from(*text)),
            Arg::Number(number) => fluent_args.set(*name, FluentValue::from(*number)),
        }
    }
    for lang in [lang, Lang::En] {
        let bundle = lang.bundle();
        if let Some(pattern) = bundle.get_message(id).and_then(|message| message.value()) {
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(
                    id,
                    lang = lang.code(),
                    ?errors,
                    "message formatted with errors"
                );
            }
            return text.into_owned();
        }
    }
    tracing::warn!(id, "no such message");
    id.to_owned()
}

/// Whether the gateway has a message `id` (in English, so in every
/// language).
pub fn has(id: &str) -> bool {
    Lang::En.bundle().has_message(id)
}

/// The message `id` in `lang`.
pub fn text(lang: Lang, id: &str) -> String {
    text_with(lang, id, &[])
}

/// The message `id` in this request's language.
pub fn here(id: &str) -> String {
    text(current(), id)
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The reader's language: their choice, else their browser's, else English.
pub fn negotiate(headers: &HeaderMap) -> Lang {
    if let Some(lang) = cookie(headers, COOKIE).and_then(Lang::from_code) {
        return lang;
    }
    let Some(accepted) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 1024)
    else {
        return Lang::En;
    };
    let requested = fluent_langneg::parse_accepted_languages(accepted);
    let available: Vec<fluent_langneg::LanguageIdentifier> = Lang::ALL
        .iter()
        .filter_map(|lang| lang.code().parse().ok())
        .collect();
    fluent_langneg::negotiate_languages(
        &requested,
        &available,
        None,
        fluent_langneg::NegotiationStrategy::Lookup,
    )
    .first()
    .and_then(|chosen| Lang::from_code(chosen.language.as_str()))
    .unwrap_or_default()
}

/// What a page needs to know of the request it answers.
#[derive(Debug, Clone)]
pub struct Ui {
    pub lang: Lang,
    /// The path and query, so the language switcher comes back here.
    pub path: String,
}

tokio::task_local! {
    static UI: Ui;
}

/// This request's language (English outside a request).
pub fn current() -> Lang {
    UI.try_with(|ui| ui.lang).unwrap_or_default()
}

#[derive(Serialize)]
struct LanguageLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

/// What every template gets: `ui` (the language's code) and `languages`
/// (links to read this page in each).
pub fn context() -> minijinja::Value {
    let ui = UI.try_with(Clone::clone).unwrap_or_else(|_| Ui {
        lang: Lang::En,
        path: "/".into(),
    });
    let languages: Vec<LanguageLink> = Lang::ALL
        .into_iter()
        .map(|lang| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("to", lang.code());
            query.append_pair("back", &ui.path);
            LanguageLink {
                code: lang.code(),
                name: lang.own_name(),
                href: format!("/language?{}", query.finish()),
                current: lang == ui.lang,
            }
        })
        .collect();
    minijinja::context! { ui => ui.lang.code(), languages => languages }
}

/// Chooses each request's language, and says which language a page is in
/// and that pages vary by it.
pub async fn middleware(request: Request, next: Next) -> Response {
    let ui = Ui {
        lang: negotiate(request.headers()),
        path: request
            .uri()
            .path_and_query()
            .map(|path| path.as_str())
            .filter(|path| path.len() <= BACK_MAX)
            .unwrap_or("/")
            .to_owned(),
    };
    let lang = ui.lang;
    let mut response = UI.scope(ui, next.run(request)).await;
    let headers = response.headers_mut();
    // Pages only: feeds, calendars and JSON are the same in every language.
    let page = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if page {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Language"));
        headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.code()),
        );
    }
    response
}

#[derive(Deserialize)]
pub struct Choice {
    to: Option<String>,
    back: Option<String>,
}

/// `/language?to=es&back=/path`: keeps the reader's choice in a cookie
/// (a year) and goes back to the page they were reading (of this site
/// only).
pub async fn choose(Query(choice): Query<Choice>) -> Response {
    let Some(lang) = choice.to.as_deref().and_then(Lang::from_code) else {
        let message = format!("to: one of {}", Lang::ALL.map(Lang::code).join(", "));
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let back = crate::local_path(choice.back.as_deref().filter(|back| back.len() <= BACK_MAX));
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    lang.code()
                ),
            ),
            (header::LOCATION, back),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// `t("id", name=value, …)` in templates: the message in the page's
/// language (`ui`). `default=` is shown when the message does not exist
/// (a language code with no name here, say).
pub fn template_function(
    state: &minijinja::State,
    id: &str,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, minijinja::Error> {
    let lang = state
        .lookup("ui")
        .and_then(|ui| ui.as_str().and_then(Lang::from_code))
        .unwrap_or_default();
    let default: Option<String> = kwargs.get("default")?;
    if let Some(default) = default
        && !has(id)
    {
        return Ok(default);
    }
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut numbers: Vec<(String, i64)> = Vec::new();
    for name in kwargs.args().filter(|name| *name != "default") {
        let value: minijinja::Value = kwargs.get(name)?;
        match i64::try_from(value.clone()) {
            Ok(number) if value.is_number() => numbers.push((name.to_owned(), number)),
            _ => texts.push((name.to_owned(), value.to_string())),
        }
    }
    kwargs.assert_all_used()?;
    let args: Vec<(&str, Arg)> = texts
        .iter()
        .map(|(name, text)| (name.as_str(), Arg::Text(text)))
        .chain(
            numbers
                .iter()
                .map(|(name, number)| (name.as_str(), Arg::Number(*number))),
        )
        .collect();
    Ok(text_with(lang, id, &args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(lang: Lang) -> Vec<String> {
        let mut ids: Vec<String> = lang
            .source()
            .lines()
            .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .filter_map(|line| line.split_once(" =").map(|(id, _)| id.trim().to_owned()))
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn both_languages_have_every_message() {
        let english = ids(Lang::En);
        assert!(english.len() > 100, "{} messages", english.len());
        assert_eq!(english, ids(Lang::Es));
        for lang in Lang::ALL {
            for id in ids(lang) {
                assert!(lang.bundle().has_message(&id), "{}: {id}", lang.code());
            }
        }
    }

    #[test]
    fn every_message_a_template_asks_for_exists() {
        for (name, source) in crate::template_sources() {
            let calls = source.match_indices("t(\"").filter(|(at, _)| {
                // `t(` itself, not the end of a filter's name (`default(`).
                !source[..*at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            for (at, _) in calls {
                let id = source[at + 3..].split('"').next().unwrap_or_default();
                // Ids built from a value ("kind-" ~ hit.kind) are checked
                // by their prefix.
                if id.ends_with('-') {
                    assert!(
                        ids(Lang::En).iter().any(|known| known.starts_with(id)),
                        "{name}: {id}"
                    );
                    continue;
                }
                assert!(Lang::En.bundle().has_message(id), "{name}: {id}");
            }
        }
    }

    #[test]
    fn plurals_and_arguments() {
        let summary = |lang, count| {
            text_with(
                lang,
                "search-summary",
                &[
                    ("count", Arg::Number(count)),
                    ("total", Arg::Text(&count.to_string())),
                    ("query", Arg::Text("agua")),
                ],
            )
        };
        assert_eq!(summary(Lang::En, 1), "1 result for “agua”");
        assert_eq!(summary(Lang::En, 7), "7 results for “agua”");
        assert_eq!(summary(Lang::Es, 1), "1 resultado para «agua»");
        assert_eq!(summary(Lang::Es, 7), "7 resultados para «agua»");
        assert_eq!(text(Lang::Es, "no-such-message"), "no-such-message");
        let posts_in =
            |lang, code| text_with(lang, "posts-in-language", &[("code", Arg::Text(code))]);
        assert_eq!(posts_in(Lang::Es, "es"), "Entradas en español");
        assert_eq!(posts_in(Lang::En, "es"), "Posts in Spanish");
        assert_eq!(posts_in(Lang::Es, "ht"), "Entradas en ht");
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_readers_choice_then_their_browsers_then_english() {
        let al = header::ACCEPT_LANGUAGE;
        assert_eq!(negotiate(&headers(&[])), Lang::En);
        assert_eq!(
            negotiate(&headers(&[(al.clone(), "es-MX,es;q=0.9")])),
            Lang::Es
        );
        assert_eq!(negotiate(&headers(&[(al.clone(), "es-419")])), Lang::Es);
        assert_eq!(
            negotiate(&headers(&[(al.clone(), "fr-FR, es;q=0.5")])),
            Lang::Es
        );
        assert_eq!(
            negotiate(&headers(&[(al.clone(), "en-US,es;q=0.8")])),
            Lang::En
        );
        assert_eq!(negotiate(&headers(&[(al.clone(), "de, fr")])), Lang::En);
        assert_eq!(negotiate(&headers(&[(al.clone(), ";;,=,q=")])), Lang::En);
        let chosen = headers(&[
            (al.clone(), "es"),
            (header::COOKIE, "anp_session=x; anp_ui=en"),
        ]);
        assert_eq!(negotiate(&chosen), Lang::En);
        let unknown = headers(&[(al, "es"), (header::COOKIE, "anp_ui=xx")]);
        assert_eq!(negotiate(&unknown), Lang::Es);
    }
}
