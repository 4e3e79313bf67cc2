//! Markdown to sanitized HTML.

use pulldown_cmark::{Options, Parser, html};

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
    use super::markdown_to_safe_html;

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
}
