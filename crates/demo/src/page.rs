//! The tiny HTML kit shared by the consent page and the demo app.
//!
//! Pages are self-contained (inline CSS, no scripts, no external resources) so
//! the demo works offline and under a strict CSP, and they stay readable on a
//! 375 px wide phone screen.

use std::fmt::Write as _;

/// Everything the demo servers echo comes from the request, so all of it is escaped for
/// element content and double-quoted attributes, as rocketgate's own pages are.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:#f4f5f7;color:#1d2330}\
main{max-width:40rem;margin:0 auto;padding:1rem}\
.card{background:#fff;border:1px solid #d9dce3;border-radius:.75rem;padding:1.25rem;\
margin:1rem 0;overflow-wrap:anywhere}\
.badge{display:inline-block;font-size:.8rem;font-weight:600;letter-spacing:.02em;\
color:#6b4b00;background:#fff3cd;border:1px solid #f0d68a;border-radius:1rem;\
padding:.1rem .6rem}\
h1{font-size:1.4rem;margin:.5rem 0 1rem}\
h2{font-size:1.1rem;margin:1.25rem 0 .5rem}\
fieldset{border:1px solid #d9dce3;border-radius:.5rem;margin:1rem 0;padding:.5rem .75rem}\
legend{font-weight:600;padding:0 .25rem}\
label{display:flex;gap:.6rem;align-items:flex-start;padding:.5rem 0;cursor:pointer}\
input[type=radio]{margin-top:.3rem;width:1.1rem;height:1.1rem}\
.muted{color:#5b6272;font-size:.9rem}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1rem}\
button,.button{flex:1 1 8rem;font:inherit;font-weight:600;padding:.7rem 1rem;\
border-radius:.5rem;border:1px solid #1f4fd1;text-align:center;text-decoration:none;\
cursor:pointer;min-height:44px}\
.primary{background:#1f4fd1;color:#fff}\
.secondary{background:#fff;color:#1f4fd1}\
table{width:100%;border-collapse:collapse;font-size:.9rem}\
th,td{text-align:left;vertical-align:top;padding:.35rem .4rem;border-bottom:1px solid #eceef2;\
word-break:break-word}\
th{width:35%;font-weight:600}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;\
word-break:break-all}\
";

/// Wraps `body_html` (already escaped) in the common page shell.
///
/// `badge` names who is talking ("Rocketpunch (demo stand-in)" or the demo app)
/// so nobody mistakes a demo page for the real provider.
pub(crate) fn page(title: &str, badge: &str, body_html: &str) -> String {
    let mut out = String::with_capacity(body_html.len() + STYLE.len() + 512);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <div class=\"card\">\n<span class=\"badge\">{badge}</span>\n{body_html}\n</div>\n\
         </main>\n</body>\n</html>\n",
        title = escape(title),
        badge = escape(badge),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn page_is_mobile_friendly_and_escapes_title() {
        let html = page("<t>", "Badge", "<p>ok</p>");
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("width=device-width, initial-scale=1"));
        assert!(html.contains("<title>&lt;t&gt;</title>"));
        assert!(html.contains("<p>ok</p>"));
    }
}
