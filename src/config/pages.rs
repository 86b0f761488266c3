//! `[pages]`: reading the operator's logo and templates once, at start-up.

use std::path::Path;

use base64::Engine as _;

use super::raw::RawPages;
use crate::pages::{PageSettings, Template, Var};

/// Logos are inlined into every page, so they must stay small.
const MAX_LOGO_BYTES: u64 = 256 * 1024;

/// `Ok(settings)` or the problems, each as (key, message).
pub(super) fn pages(
    raw: RawPages,
    default_name: &str,
) -> Result<PageSettings, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let logo_data_uri = raw.logo_file.as_deref().and_then(|path| {
        logo(path)
            .map_err(|m| problems.push(("pages.logo_file".to_owned(), m)))
            .ok()
    });
    let (mut error_template, mut sign_in_template) = (None, None);
    if let Some(dir) = raw.templates_dir.as_deref() {
        match templates(Path::new(dir)) {
            Ok((error, sign_in)) => {
                error_template = error;
                sign_in_template = sign_in;
            }
            Err(m) => problems.push(("pages.templates_dir".to_owned(), m)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PageSettings {
        sign_in_page: raw.sign_in_page.unwrap_or(false),
        app_name: raw
            .app_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| default_name.to_owned()),
        footer: raw.footer,
        logo_data_uri,
        error_template,
        sign_in_template,
    })
}

fn logo(path: &str) -> Result<String, String> {
    let mime = match Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        _ => {
            return Err(format!(
                "{path:?} must be a .png, .jpg, .gif, .webp or .svg file"
            ));
        }
    };
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {path:?}: {e}"))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(format!(
            "{path:?} is {size} bytes; at most {MAX_LOGO_BYTES}"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// `error.html` and `sign_in.html` from `dir`, each optional but at least one present.
fn templates(dir: &Path) -> Result<(Option<Template>, Option<Template>), String> {
    if !dir.is_dir() {
        return Err(format!(
            "{:?} is not a directory",
            dir.display().to_string()
        ));
    }
    let read = |name: &str, required: Var| -> Result<Option<Template>, String> {
        let path = dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let template = Template::parse(&text).map_err(|e| format!("{name}: {e}"))?;
        if !template.uses(required) {
            return Err(format!(
                "{name} must use {{{{{}}}}}",
                match required {
                    Var::Message => "message",
                    _ => "sign_in_url",
                }
            ));
        }
        Ok(Some(template))
    };
    let error = read("error.html", Var::Message)?;
    let sign_in = read("sign_in.html", Var::SignInUrl)?;
    if error.is_none() && sign_in.is_none() {
        return Err("contains neither error.html nor sign_in.html".into());
    }
    Ok((error, sign_in))
}
