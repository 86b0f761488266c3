//! A tiny, safe template: `{{name}}` placeholders, parsed once at start-up, every value
//! HTML-escaped on the way in (or rendered by us, for the few HTML fragments).

use std::fmt::Write as _;

/// What a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Status,
    Title,
    Message,
    Account,
    RequestId,
    Action,
    AppName,
    Footer,
    Logo,
    SignInUrl,
    Style,
}

impl Var {
    fn parse(name: &str) -> Option<Var> {
        Some(match name.trim() {
            "status" => Var::Status,
            "title" => Var::Title,
            "message" => Var::Message,
            "account" => Var::Account,
            "request_id" => Var::RequestId,
            "action" => Var::Action,
            "app_name" => Var::AppName,
            "footer" => Var::Footer,
            "logo" => Var::Logo,
            "sign_in_url" => Var::SignInUrl,
            "style" => Var::Style,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
enum Segment {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template(Vec<Segment>);

impl Template {
    pub fn empty() -> Template {
        Template(Vec::new())
    }

    /// Parses `text`; an unknown `{{name}}` is an error naming it, so typos surface at start-up.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "a \"{{\" is never closed".to_owned())?;
            let name = &after[..close];
            let var =
                Var::parse(name).ok_or_else(|| format!("unknown placeholder {{{{{name}}}}}"))?;
            segments.push(Segment::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template(segments))
    }

    pub fn uses(&self, var: Var) -> bool {
        self.0
            .iter()
            .any(|s| matches!(s, Segment::Var(v) if *v == var))
    }

    /// Renders with `value` giving each placeholder's already-safe HTML.
    pub fn render(&self, value: impl Fn(Var) -> String) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v) => {
                    let _ = write!(out, "{}", value(*v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("<h1>{{title}}</h1>{{ message }}!").unwrap();
        assert!(t.uses(Var::Title) && t.uses(Var::Message) && !t.uses(Var::Action));
        let html = t.render(|v| match v {
            Var::Title => "T".into(),
            _ => "M".into(),
        });
        assert_eq!(html, "<h1>T</h1>M!");
    }

    #[test]
    fn refuses_unknown_and_unclosed_placeholders() {
        assert!(Template::parse("{{titel}}").unwrap_err().contains("titel"));
        assert!(Template::parse("{{title").is_err());
        assert!(Template::parse("no placeholders").is_ok());
    }
}
