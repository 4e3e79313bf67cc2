//! Markdown to sanitized HTML.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use pulldown_cmark::{Options, Parser, html};

/// A summary of HTML for a feed: its plain text (`html_plain_text`, so
/// paragraphs stay apart) with runs of whitespace made one space, at most
/// `max_chars` characters of it (an ellipsis marks the cut), escaped for
/// HTML again (`&lt;`, `&amp;`).
pub fn html_summary(html: &str, max_chars: usize) -> String {
    let text = html_plain_text(html);
    let mut summary = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count = 0;
    let mut cut = false;
    'words: for word in text.split_whitespace() {
        if count > 0 {
            if count == max_chars {
                cut = true;
                break;
            }
            summary.push(' ');
            count += 1;
        }
        for char in word.chars() {
            if count == max_chars {
                cut = true;
                break 'words;
            }
            summary.push(char);
            count += 1;
        }
    }
    if cut {
        summary.truncate(summary.trim_end().len());
        summary.push('…');
    }
    let mut escaped = String::with_capacity(summary.len() + summary.len() / 8);
    // Writing to a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut escaped, &summary);
    escaped
}

/// The plain text of HTML: no tags, entities undone, scripts and styles
/// left out, a space where a block (a paragraph, an item, a line break)
/// ends — for search. Read by html5ever's tokenizer alone: no tree is
/// built and written out again, as cleaning would.
pub fn html_plain_text(html: &str) -> String {
    let tokenizer = Tokenizer::new(TextSink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The sink never asks to stop for a script: the input is read whole.
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let mut text = tokenizer.sink.text.into_inner();
    text.truncate(text.trim_end().len());
    text
}

/// Elements within a line of text: their tags do not part words
/// (`organiza<em>ción</em>`).
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "i", "ins", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "u",
    "var",
];

/// Collects the text the tokenizer finds.
#[derive(Default)]
struct TextSink {
    text: RefCell<String>,
    /// Inside a script or a style: nothing is text until its end tag.
    skipping: RefCell<Option<html5ever::LocalName>>,
}

impl TextSink {
    fn tag(&self, tag: Tag) -> TokenSinkResult<()> {
        let mut skipping = self.skipping.borrow_mut();
        if skipping.is_some() {
            if tag.kind == TagKind::EndTag && skipping.as_ref() == Some(&tag.name) {
                *skipping = None;
            }
            return TokenSinkResult::Continue;
        }
        if !INLINE.contains(&&*tag.name) {
            let mut text = self.text.borrow_mut();
            if text
                .chars()
                .next_back()
                .is_some_and(|last| !last.is_whitespace())
            {
                text.push(' ');
            }
        }
        if tag.kind == TagKind::EndTag || tag.self_closing {
            return TokenSinkResult::Continue;
        }
        // As a browser's tree builder would switch the tokenizer: the
        // content of these is not markup.
        match &*tag.name {
            "script" => {
                *skipping = Some(tag.name);
                TokenSinkResult::RawData(RawKind::ScriptData)
            }
            "style" => {
                *skipping = Some(tag.name);
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
            "iframe" | "noembed" | "noframes" | "noscript" | "xmp" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        }
    }
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(tag) => self.tag(tag),
            Token::CharacterTokens(chars) => {
                if self.skipping.borrow().is_none() {
                    let mut text = self.text.borrow_mut();
                    // Leading whitespace is not kept.
                    if text.is_empty() {
                        text.push_str(chars.trim_start());
                    } else {
                        text.push_str(&chars);
                    }
                }
                TokenSinkResult::Continue
            }
            _ => TokenSinkResult::Continue,
        }
    }
}

/// Undoes the HTML escaping of text (`html_summary`'s output), for
/// plain-text uses such as search and JSON Feed summaries.
pub fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Renders Markdown (CommonMark with tables and strikethrough) and removes
/// everything unsafe: scripts, event handlers, `javascript:` links, styles.
/// Links get `rel="noopener noreferrer nofollow"`.
pub fn markdown_to_safe_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let parser = Parser::new_ext(markdown, options);
    let mut raw_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw_html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&raw_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{html_plain_text, html_summary, markdown_to_safe_html};

    #[test]
    fn text_of_html_keeps_no_tag() {
        let html = "<p>Tom &amp; Jerry <em>&lt;3</em></p><script>x()</script>";
        assert_eq!(html_summary(html, 100), "Tom &amp; Jerry &lt;3");
        assert_eq!(html_plain_text(html), "Tom & Jerry <3");
    }

    #[test]
    fn summaries_keep_paragraphs_apart_and_cut_at_the_limit() {
        let html = "<p>Uno</p><p>dos\n\n  tres</p><ul><li>cuatro</li></ul>";
        assert_eq!(html_summary(html, 100), "Uno dos tres cuatro");
        // Exactly the limit: no cut.
        assert_eq!(html_summary(html, 19), "Uno dos tres cuatro");
        assert_eq!(html_summary(html, 18), "Uno dos tres cuatr…");
        // A cut after a space leaves no space before the ellipsis.
        assert_eq!(html_summary(html, 8), "Uno dos…");
        assert_eq!(html_summary(html, 7), "Uno dos…");
        // The limit counts characters, not bytes, and an entity is never cut.
        assert_eq!(
            html_summary("<p>organización &amp; acción</p>", 14),
            "organización &amp;…"
        );
        assert_eq!(
            html_summary("<p>\"a\" 'b'</p>", 20),
            "&quot;a&quot; &#39;b&#39;"
        );
        assert_eq!(html_summary("", 10), "");
        assert_eq!(html_summary("<p>x</p>", 0), "…");
    }

    #[test]
    fn plain_text_parts_blocks_not_inline_elements_and_skips_scripts_and_styles() {
        let html = "<h1>Marcha</h1><p>La organiza<em>ción</em> &quot;convoca&quot;&nbsp;hoy</p>\
                    <ul><li>uno</li><li>dos<br>tres</li></ul>\
                    <script>if (a<b) { x('</p>') }</script><style>p > a { color: red }</style>\
                    <!-- nota --><p>fin &amp; <a href=\"/x\">enlace</a></p>";
        assert_eq!(
            html_plain_text(html),
            "Marcha La organización \"convoca\"\u{a0}hoy uno dos tres fin & enlace"
        );
        assert_eq!(html_plain_text(""), "");
        assert_eq!(html_plain_text("  solo texto  "), "solo texto");
        // Broken markup is still read to its end.
        assert_eq!(html_plain_text("<p>a <b>b</p> <div"), "a b");
    }

    #[test]
    fn renders_markdown() {
        let html = markdown_to_safe_html("# Hola\n\n**fuerte** [enlace](https://example.org)");
        assert!(html.contains("<h1>Hola</h1>"));
        assert!(html.contains("<strong>fuerte</strong>"));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
    }

    #[test]
    fn strips_scripts_handlers_and_javascript_links() {
        let html = markdown_to_safe_html(
            "<script>alert(1)</script><img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        );
        assert!(html.contains(">x</a>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
    }

    /// Known cross-site scripting payloads (OWASP's filter evasion cheat
    /// sheet and friends), raw and inside Markdown: nothing that runs
    /// survives.
    #[test]
    fn known_xss_payloads_are_neutralized() {
        let payloads = [
            "<script>alert('XSS')</script>",
            "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
            "<IMG SRC=\"javascript:alert('XSS');\">",
            "<IMG SRC=javascript:alert('XSS')>",
            "<IMG SRC=JaVaScRiPt:alert('XSS')>",
            "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
            "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
            "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
            "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
            "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
            "<IMG SRC=\"jav\tascript:alert('XSS');\">",
            "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
            "<SCRIPT/XSS SRC=\"https://xss.example/xss.js\"></SCRIPT>",
            "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
            "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
            "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
            "<svg/onload=alert('XSS')>",
            "<svg><script>alert(1)</script></svg>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
            "<a href=\"vbscript:msgbox('XSS')\">x</a>",
            "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
            "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
            "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
            "<STYLE>@import'https://xss.example/xss.css';</STYLE>",
            "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
            "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
            "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
            "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"https://xss.example/scriptlet.html\"></OBJECT>",
            "<EMBED SRC=\"data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+\">",
            "<form><button formaction=javascript:alert(1)>x</button></form>",
            "<details open ontoggle=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JAVASCRIPT:alert(1))",
            "[click](data:text/html,<script>alert(1)</script>)",
            "![x](javascript:alert(1))",
            "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
        ];
        // The markup left: every tag. Text keeps `<` escaped as `&lt;`, so a
        // payload shown as text is harmless and not looked at.
        fn markup(html: &str) -> String {
            html.split('<')
                .skip(1)
                .map(|rest| format!("<{}>", rest.split('>').next().unwrap_or("")))
                .collect::<String>()
                .to_ascii_lowercase()
        }
        for payload in payloads {
            for text in [
                payload.to_owned(),
                format!("Before\n\n{payload}\n\n**after**"),
            ] {
                let html = markup(&markdown_to_safe_html(&text));
                for banned in [
                    "<script",
                    "javascript:",
                    "vbscript:",
                    "data:text",
                    "onerror",
                    "onload",
                    "ontoggle",
                    "<iframe",
                    "<svg",
                    "<object",
                    "<embed",
                    "<style",
                    "<meta",
                    "<link",
                    "<form",
                    "formaction",
                    "style=",
                    "background=",
                    "<input",
                ] {
                    assert!(
                        !html.contains(banned),
                        "{payload:?} left {banned:?} in {html:?}"
                    );
                }
            }
        }
    }
}
