//! `rocketgate migrate-config`: an oauth2-proxy configuration (its `.cfg` file, its
//! `OAUTH2_PROXY_*` environment, its command-line flags) as a `rocketgate.toml`. Every option
//! with an equivalent is converted; every other one is kept as a comment saying why not, so
//! nothing a user relied on disappears silently.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use toml::Value;

/// oauth2-proxy options that take several values: in its `.cfg` file a list, in the
/// environment comma-separated, on the command line one flag per value (named in the
/// singular).
const LISTS: &[(&str, &str)] = &[
    ("upstreams", "upstream"),
    ("email_domains", "email-domain"),
    ("whitelist_domains", "whitelist-domain"),
    ("skip_auth_routes", "skip-auth-route"),
    ("skip_auth_regex", "skip-auth-regex"),
    ("api_routes", "api-route"),
    ("cookie_domains", "cookie-domain"),
    ("trusted_ips", "trusted-ip"),
    (
        "redis_sentinel_connection_urls",
        "redis-sentinel-connection-urls",
    ),
    (
        "redis_cluster_connection_urls",
        "redis-cluster-connection-urls",
    ),
];

/// Where an option came from; later sources win, as in oauth2-proxy (flags over the
/// environment over the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    File,
    Env,
    Args,
}

/// oauth2-proxy's options by their `.cfg` names.
#[derive(Debug, Default)]
pub struct Options(BTreeMap<String, (Value, Origin)>);

impl Options {
    /// Options from an oauth2-proxy `.cfg` file (TOML).
    pub fn read_cfg(&mut self, text: &str) -> Result<(), String> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| format!("not an oauth2-proxy config file (TOML): {}", e.message()))?;
        for (key, value) in table {
            self.set(&key.replace('-', "_"), value, Origin::File);
        }
        Ok(())
    }

    /// `OAUTH2_PROXY_*` variables; list options comma-separated.
    pub fn read_env(&mut self, env: &HashMap<String, String>) {
        for (var, value) in env {
            if let Some(name) = var.strip_prefix("OAUTH2_PROXY_") {
                let name = name.to_ascii_lowercase();
                let value = if is_list(&name) {
                    Value::Array(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| Value::String(s.to_owned()))
                            .collect(),
                    )
                } else {
                    Value::String(value.clone())
                };
                self.set(&name, value, Origin::Env);
            }
        }
    }

    /// Command-line flags as one string (`--upstream=http://a --email-domain example.com`).
    pub fn read_args(&mut self, args: &str) -> Result<(), String> {
        let words = split_words(args)?;
        let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                return Err(format!("`{word}` is not a flag"));
            };
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (flag, None),
            };
            let name = LISTS
                .iter()
                .find(|(_, singular)| *singular == flag)
                .map_or_else(
                    || flag.replace('-', "_"),
                    |(plural, _)| (*plural).to_owned(),
                );
            let value = match inline {
                Some(v) => v,
                None if words.get(i + 1).is_some_and(|w| !w.starts_with('-')) => {
                    i += 1;
                    words[i].clone()
                }
                None => "true".to_owned(),
            };
            if is_list(&name) {
                lists.entry(name).or_default().push(Value::String(value));
            } else {
                self.set(&name, Value::String(value), Origin::Args);
            }
            i += 1;
        }
        for (name, values) in lists {
            self.set(&name, Value::Array(values), Origin::Args);
        }
        Ok(())
    }

    fn set(&mut self, name: &str, value: Value, origin: Origin) {
        self.0.insert(name.to_owned(), (value, origin));
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name).map(|(v, _)| v) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => items.first().and_then(|v| v.as_str()).map(str::to_owned),
            Some(other) => Some(other.to_string()),
            None => None,
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name).map(|(v, _)| v) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(other) => vec![other.to_string()],
            None => Vec::new(),
        }
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match self.0.get(name).map(|(v, _)| v) {
            Some(Value::Boolean(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

fn is_list(name: &str) -> bool {
    LISTS.iter().any(|(plural, _)| *plural == name)
}

/// Splits a command line into words: whitespace separates, single and double quotes group.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if quote.is_some() {
        return Err("an unclosed quote in --args".into());
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

/// The converted configuration and what happened to each option.
pub struct Converted {
    /// The `rocketgate.toml` text.
    pub toml: String,
    /// Options converted, by oauth2-proxy name.
    pub mapped: Vec<String>,
    /// Options not converted, with why.
    pub unmapped: Vec<(String, String)>,
}

/// One line of the output: `key = value` in `section`, with the oauth2-proxy option(s) it
/// came from.
struct Line {
    key: String,
    value: Value,
    from: String,
    note: Option<String>,
}

#[derive(Default)]
struct Out {
    sections: BTreeMap<&'static str, Vec<Line>>,
    routes: Vec<Vec<Line>>,
    mapped: Vec<String>,
    unmapped: Vec<(String, String)>,
}

impl Out {
    fn put(&mut self, section: &'static str, key: &str, value: Value, from: &str) {
        self.put_noted(section, key, value, from, None);
    }

    fn put_noted(
        &mut self,
        section: &'static str,
        key: &str,
        value: Value,
        from: &str,
        note: Option<String>,
    ) {
        self.sections.entry(section).or_default().push(Line {
            key: key.to_owned(),
            value,
            from: from.to_owned(),
            note,
        });
        if !self.mapped.iter().any(|m| m == from) {
            self.mapped.push(from.to_owned());
        }
    }

    fn skip(&mut self, name: &str, why: impl Into<String>) {
        self.unmapped.push((name.to_owned(), why.into()));
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// Converts `options`; `fresh_secret` is used when oauth2-proxy's cookie secret cannot be
/// (rocketgate needs 32 bytes).
pub fn convert(options: &Options, fresh_secret: &str) -> Converted {
    let mut out = Out::default();
    let mut handled: Vec<&'static str> = Vec::new();

    if mark(&mut handled, options, "http_address")
        && let Some(addr) = options.text("http_address")
    {
        let addr = addr.trim_start_matches("http://");
        let addr = if addr.starts_with(':') {
            format!("0.0.0.0{addr}")
        } else {
            addr.to_owned()
        };
        out.put("", "listen", string(addr), "http_address");
    }
    if mark(&mut handled, options, "https_address") {
        out.skip(
            "https_address",
            "rocketgate serves one listener: set `listen` to it and [tls] cert_file/key_file",
        );
    }
    if mark(&mut handled, options, "upstreams") {
        upstreams(&mut out, &options.list("upstreams"));
    }
    if mark(&mut handled, options, "redirect_url")
        && let Some(url) = options.text("redirect_url")
    {
        match url.strip_suffix("/oauth2/callback") {
            Some(base) => out.put("", "public_url", string(base), "redirect_url"),
            None => out.skip(
                "redirect_url",
                "rocketgate's callback is always public_url + /oauth2/callback: set public_url and register that URL at Rocketpunch",
            ),
        }
    }
    for (theirs, ours) in [
        ("client_id", "client_id"),
        ("client_secret", "client_secret"),
        ("client_secret_file", "client_secret_file"),
        ("login_url", "authorize_url"),
        ("redeem_url", "token_url"),
        ("profile_url", "profile_url"),
    ] {
        if mark(&mut handled, options, theirs)
            && let Some(v) = options.text(theirs)
        {
            out.put("provider", ours, string(v), theirs);
        }
    }
    if mark(&mut handled, options, "scope")
        && let Some(scope) = options.text("scope")
    {
        let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        out.put("provider", "scopes", strings(&scopes), "scope");
    }
    if mark(&mut handled, options, "provider") {
        out.skip(
            "provider",
            "rocketgate speaks Rocketpunch's OAuth 2.0 only; its endpoints are the defaults or provider.*_url",
        );
    }

    cookies(&mut out, options, &mut handled, fresh_secret);
    access(&mut out, options, &mut handled);

    if mark(&mut handled, options, "pass_access_token") {
        boolean(
            &mut out,
            options,
            "pass_access_token",
            "headers",
            "pass_access_token",
        );
    }
    for (name, why) in [
        (
            "set_xauthrequest",
            "always on: /oauth2/auth answers carry X-Auth-Request-User, -Email, -Preferred-Username",
        ),
        (
            "pass_user_headers",
            "always on: the app gets X-Forwarded-User, -Email, -Preferred-Username",
        ),
        (
            "pass_basic_auth",
            "rocketgate never sends a Basic Authorization header upstream",
        ),
        (
            "pass_authorization_header",
            "rocketgate does not pass the ID token; [assertion] signs a JWT for the app instead",
        ),
        (
            "pass_host_header",
            "routes keep the client's Host unless preserve_host = false",
        ),
        (
            "api_routes",
            "not needed: requests that are not browser navigations always get 401 JSON, never a login redirect",
        ),
        (
            "skip_jwt_bearer_tokens",
            "set provider.jwks_url and access.accept_bearer_tokens = true to accept Rocketpunch bearer tokens",
        ),
        (
            "trusted_ips",
            "rocketgate lets no address past sign-in: use access.skip_auth_routes or a public [[routes]] entry",
        ),
        (
            "cookie_refresh",
            "rocketgate refreshes access tokens before they expire (session.refresh_before)",
        ),
        (
            "cookie_httponly",
            "rocketgate's session cookie is always HttpOnly",
        ),
        (
            "cookie_csrf_per_request",
            "rocketgate always keeps one login cookie per login",
        ),
        (
            "custom_templates_dir",
            "rocketgate's templates are plain HTML with {{sign_in_url}} and friends (pages.templates_dir); rewrite yours",
        ),
        (
            "banner",
            "set pages.app_name, pages.footer, or a sign_in.html template",
        ),
        (
            "redis_password",
            "put the password in session.redis_url (redis://:PASSWORD@host) or session.redis_password_file",
        ),
        (
            "request_logging",
            "rocketgate logs every request (one line each)",
        ),
        (
            "standard_logging",
            "rocketgate logs every request (one line each)",
        ),
        ("auth_logging", "rocketgate logs every sign-in"),
        ("silence_ping_logging", "health checks are not logged"),
        ("ping_path", "rocketgate answers /ping and /ready"),
    ] {
        if options.0.contains_key(name) {
            handled.push(name);
            out.skip(name, why);
        }
    }
    if options.flag("reverse_proxy") == Some(true) {
        handled.push("reverse_proxy");
        out.put_noted(
            "",
            "trusted_proxies",
            strings(&["127.0.0.1".to_owned()]),
            "reverse_proxy",
            Some("list the addresses your front proxy connects from".into()),
        );
    } else if options.0.contains_key("reverse_proxy") {
        handled.push("reverse_proxy");
        out.mapped.push("reverse_proxy".into());
    }
    if options.0.contains_key("metrics_address") {
        handled.push("metrics_address");
        if let Some(addr) = options.text("metrics_address") {
            out.put("", "metrics_listen", string(addr), "metrics_address");
        }
    }
    redis(&mut out, options, &mut handled);
    pages(&mut out, options, &mut handled);
    for (theirs, ours) in [("tls_cert_file", "cert_file"), ("tls_key_file", "key_file")] {
        if options.0.contains_key(theirs) {
            handled.push(theirs);
            if let Some(v) = options.text(theirs) {
                out.put("tls", ours, string(v), theirs);
            }
        }
    }

    for (name, (value, _)) in &options.0 {
        if !handled.iter().any(|h| h == name) && !out.unmapped.iter().any(|(n, _)| n == name) {
            let secret = name.contains("secret") || name.contains("password");
            let shown = if secret {
                "\"...\"".to_owned()
            } else {
                value.to_string()
            };
            out.skip(name, format!("no rocketgate equivalent (was {shown})"));
        }
    }
    render(out)
}

fn upstreams(out: &mut Out, upstreams: &[String]) {
    let mut routes: Vec<(String, String)> = Vec::new();
    for upstream in upstreams {
        let Ok(url) = url::Url::parse(upstream) else {
            out.skip("upstreams", format!("`{upstream}` is not a URL"));
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            out.skip(
                "upstreams",
                format!(
                    "`{upstream}`: rocketgate proxies to http(s) upstreams only, not {}://",
                    url.scheme()
                ),
            );
            continue;
        }
        let base = format!(
            "{}://{}",
            url.scheme(),
            &url[url::Position::BeforeHost..url::Position::AfterPort]
        );
        let path = url.path().trim_end_matches('/');
        routes.push((
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
            base,
        ));
    }
    match routes.as_slice() {
        [] => {}
        [(path, base)] if path == "/" => out.put("", "upstream", string(base.clone()), "upstreams"),
        _ => {
            // oauth2-proxy picks the longest matching path; so do these routes.
            routes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
            for (path, base) in routes {
                out.routes.push(vec![
                    Line {
                        key: "path".into(),
                        value: string(path),
                        from: "upstreams".into(),
                        note: None,
                    },
                    Line {
                        key: "upstream".into(),
                        value: string(base),
                        from: "upstreams".into(),
                        note: None,
                    },
                ]);
            }
            if !out.mapped.iter().any(|m| m == "upstreams") {
                out.mapped.push("upstreams".into());
            }
        }
    }
}

fn cookies(out: &mut Out, options: &Options, handled: &mut Vec<&'static str>, fresh_secret: &str) {
    if mark(handled, options, "cookie_name")
        && let Some(v) = options.text("cookie_name")
    {
        out.put("cookie", "name", string(v), "cookie_name");
    }
    if mark(handled, options, "cookie_secret")
        && let Some(secret) = options.text("cookie_secret")
    {
        let bytes = secret_len(&secret);
        if bytes == Some(32) && secret.len() != 32 {
            out.put("cookie", "secret", string(secret), "cookie_secret");
        } else {
            out.put_noted(
                "cookie",
                "secret",
                string(fresh_secret),
                "cookie_secret",
                Some(format!(
                    "a new secret: rocketgate needs 32 random bytes in base64 and oauth2-proxy's was {}; users sign in once more anyway (the cookie format differs)",
                    bytes.map_or("not base64".to_owned(), |n| format!("{n} bytes"))
                )),
            );
        }
    }
    if !options.0.contains_key("cookie_secret") && !options.0.contains_key("cookie_secret_file") {
        out.sections.entry("cookie").or_default().push(Line {
            key: "secret".into(),
            value: string(fresh_secret),
            from: "cookie_secret".into(),
            note: Some(
                "a new secret: the sources converted had no cookie_secret (pass --env or --args if it is there)"
                    .into(),
            ),
        });
    }
    if mark(handled, options, "cookie_secret_file")
        && let Some(v) = options.text("cookie_secret_file")
    {
        out.put_noted(
            "cookie",
            "secret_file",
            string(v),
            "cookie_secret_file",
            Some("must hold 32 random bytes in base64 (rocketgate generate-secret)".into()),
        );
    }
    if mark(handled, options, "cookie_domains") {
        let domains = options.list("cookie_domains");
        if let Some(first) = domains.first() {
            let note = (domains.len() > 1).then(|| {
                format!(
                    "oauth2-proxy had {}; rocketgate sets one",
                    domains.join(", ")
                )
            });
            out.put_noted(
                "cookie",
                "domain",
                string(first.trim_start_matches('.')),
                "cookie_domains",
                note,
            );
        }
    }
    if mark(handled, options, "cookie_secure") {
        boolean(out, options, "cookie_secure", "cookie", "secure");
    }
    if mark(handled, options, "cookie_samesite")
        && let Some(v) = options.text("cookie_samesite")
        && !v.is_empty()
    {
        out.put(
            "cookie",
            "same_site",
            string(v.to_ascii_lowercase()),
            "cookie_samesite",
        );
    }
    if mark(handled, options, "cookie_expire")
        && let Some(v) = options.text("cookie_expire")
    {
        out.put("cookie", "expire", string(v), "cookie_expire");
    }
}

/// A true/false option as `section.key`, or a comment when its value is neither.
fn boolean(out: &mut Out, options: &Options, name: &str, section: &'static str, key: &str) {
    match options.flag(name) {
        Some(b) => out.put(section, key, Value::Boolean(b), name),
        None => out.skip(name, "its value is not true or false"),
    }
}

/// Whether `options` has `name`, which counts as handled from now on.
fn mark(handled: &mut Vec<&'static str>, options: &Options, name: &'static str) -> bool {
    handled.push(name);
    options.0.contains_key(name)
}

/// How many bytes a cookie secret stands for, the way oauth2-proxy reads it (base64, else
/// the raw string).
fn secret_len(secret: &str) -> Option<usize> {
    use base64::Engine as _;
    [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .find_map(|e| e.decode(secret.trim()).ok())
    .map(|b| b.len())
}

fn access(out: &mut Out, options: &Options, handled: &mut Vec<&'static str>) {
    if mark(handled, options, "email_domains") {
        out.put(
            "access",
            "allowed_email_domains",
            strings(&options.list("email_domains")),
            "email_domains",
        );
    }
    if mark(handled, options, "authenticated_emails_file")
        && let Some(v) = options.text("authenticated_emails_file")
    {
        out.put(
            "access",
            "allowed_emails_file",
            string(v),
            "authenticated_emails_file",
        );
    }
    if mark(handled, options, "whitelist_domains") {
        out.put(
            "access",
            "redirect_domains",
            strings(&options.list("whitelist_domains")),
            "whitelist_domains",
        );
    }
    let routes_seen = mark(handled, options, "skip_auth_routes");
    let regex_seen = mark(handled, options, "skip_auth_regex");
    if routes_seen || regex_seen {
        let mut routes = options.list("skip_auth_routes");
        routes.extend(options.list("skip_auth_regex"));
        let from = match (routes_seen, regex_seen) {
            (true, true) => "skip_auth_routes, skip_auth_regex",
            (true, false) => "skip_auth_routes",
            _ => "skip_auth_regex",
        };
        out.put("access", "skip_auth_routes", strings(&routes), from);
    }
}

fn redis(out: &mut Out, options: &Options, handled: &mut Vec<&'static str>) {
    let names = [
        "session_store_type",
        "redis_connection_url",
        "redis_use_sentinel",
        "redis_sentinel_master_name",
        "redis_sentinel_connection_urls",
        "redis_use_cluster",
        "redis_cluster_connection_urls",
    ];
    if !names.iter().any(|n| options.0.contains_key(*n)) {
        return;
    }
    handled.extend(names);
    if options.text("session_store_type").as_deref() != Some("redis") {
        for name in names.iter().filter(|n| options.0.contains_key(**n)) {
            if *name != "session_store_type" {
                out.skip(name, "used only with session_store_type = \"redis\"");
            }
        }
        return;
    }
    out.put("session", "store", string("redis"), "session_store_type");
    if options.flag("redis_use_sentinel") == Some(true) {
        let urls = options.list("redis_sentinel_connection_urls");
        out.put(
            "session",
            "redis_sentinels",
            strings(&urls),
            "redis_sentinel_connection_urls",
        );
        if let Some(master) = options.text("redis_sentinel_master_name") {
            out.put(
                "session",
                "redis_sentinel_master",
                string(master),
                "redis_sentinel_master_name",
            );
        }
    } else if options.flag("redis_use_cluster") == Some(true) {
        let urls = options.list("redis_cluster_connection_urls");
        out.put(
            "session",
            "redis_cluster_nodes",
            strings(&urls),
            "redis_cluster_connection_urls",
        );
    } else if let Some(url) = options.text("redis_connection_url") {
        out.put("session", "redis_url", string(url), "redis_connection_url");
    }
}

fn pages(out: &mut Out, options: &Options, handled: &mut Vec<&'static str>) {
    handled.push("skip_provider_button");
    // oauth2-proxy shows its sign-in page unless skip_provider_button is set.
    if options.flag("skip_provider_button") != Some(true) {
        out.put_noted(
            "pages",
            "sign_in_page",
            Value::Boolean(true),
            "skip_provider_button",
            Some("oauth2-proxy showed a sign-in page (skip_provider_button was off); remove to go straight to Rocketpunch".into()),
        );
    } else {
        out.mapped.push("skip_provider_button".into());
    }
    if options.0.contains_key("custom_sign_in_logo") {
        handled.push("custom_sign_in_logo");
        match options.text("custom_sign_in_logo") {
            Some(v) if !v.starts_with("http") && v != "-" => {
                out.put("pages", "logo_file", string(v), "custom_sign_in_logo");
            }
            _ => out.skip(
                "custom_sign_in_logo",
                "pages.logo_file takes a local file only",
            ),
        }
    }
    if options.0.contains_key("footer") {
        handled.push("footer");
        if let Some(v) = options.text("footer").filter(|v| v != "-") {
            out.put("pages", "footer", string(v), "footer");
        }
    }
}

fn render(out: Out) -> Converted {
    let mut text = String::from(
        "# rocketgate.toml, converted from an oauth2-proxy configuration by\n\
         # `rocketgate migrate-config`. Check it with `rocketgate check-config --config FILE`.\n",
    );
    let line = |text: &mut String, l: &Line| {
        let _ = write!(text, "{} = {}", l.key, l.value);
        let _ = write!(text, "  # from {}", l.from);
        if let Some(note) = &l.note {
            let _ = write!(text, ": {note}");
        }
        text.push('\n');
    };
    if let Some(top) = out.sections.get("") {
        text.push('\n');
        for l in top {
            line(&mut text, l);
        }
    }
    for (section, lines) in &out.sections {
        if section.is_empty() {
            continue;
        }
        let _ = write!(text, "\n[{section}]\n");
        for l in lines {
            line(&mut text, l);
        }
    }
    for route in &out.routes {
        text.push_str("\n[[routes]]\n");
        for l in route {
            line(&mut text, l);
        }
    }
    if !out.unmapped.is_empty() {
        text.push_str("\n# Not converted:\n");
        for (name, why) in &out.unmapped {
            let _ = writeln!(text, "# - {name}: {why}");
        }
    }
    Converted {
        toml: text,
        mapped: out.mapped,
        unmapped: out.unmapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn converted(cfg: &str, env: &[(&str, &str)], args: &str) -> (toml::Table, Converted) {
        let mut options = Options::default();
        options.read_cfg(cfg).unwrap();
        options.read_env(
            &env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        options.read_args(args).unwrap();
        let c = convert(&options, SECRET);
        let table = toml::from_str(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        (table, c)
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let (t, _) = converted(
            "http_address = \"127.0.0.1:1\"\nclient_id = \"file\"\ncookie_name = \"file\"\n",
            &[
                ("OAUTH2_PROXY_CLIENT_ID", "env"),
                ("OAUTH2_PROXY_COOKIE_NAME", "env"),
            ],
            "--cookie-name=args --email-domain example.com --email-domain=example.org --skip-provider-button",
        );
        assert_eq!(t["listen"].as_str(), Some("127.0.0.1:1"));
        assert_eq!(t["provider"]["client_id"].as_str(), Some("env"));
        assert_eq!(t["cookie"]["name"].as_str(), Some("args"));
        let domains: Vec<&str> = t["access"]["allowed_email_domains"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(domains, ["example.com", "example.org"]);
        assert!(
            t.get("pages").is_none(),
            "skip_provider_button: no sign-in page"
        );
    }

    #[test]
    fn several_upstreams_become_routes_longest_path_first() {
        let (t, _) = converted(
            "upstreams = [\"http://127.0.0.1:8080/\", \"http://127.0.0.1:9000/api/\", \"file:///var/www#/static/\"]\n",
            &[],
            "",
        );
        let routes = t["routes"].as_array().unwrap();
        assert_eq!(routes[0]["path"].as_str(), Some("/api"));
        assert_eq!(
            routes[0]["upstream"].as_str(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(routes[1]["path"].as_str(), Some("/"));
    }

    #[test]
    fn a_short_cookie_secret_is_replaced_and_said_so() {
        let (t, c) = converted("cookie_secret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n", &[], "");
        assert_eq!(t["cookie"]["secret"].as_str(), Some(SECRET));
        assert!(c.toml.contains("oauth2-proxy's was 16 bytes"), "{}", c.toml);
    }

    #[test]
    fn options_without_an_equivalent_are_comments_never_dropped() {
        let (_, c) = converted(
            "set_xauthrequest = true\nprovider = \"oidc\"\nsome_future_option = 3\nredis_password = \"hunter2\"\n",
            &[],
            "",
        );
        for name in [
            "set_xauthrequest",
            "provider",
            "some_future_option",
            "redis_password",
        ] {
            assert!(
                c.unmapped.iter().any(|(n, _)| n == name),
                "{name}: {:?}",
                c.unmapped
            );
            assert!(c.toml.contains(&format!("# - {name}: ")), "{}", c.toml);
        }
        assert!(!c.toml.contains("hunter2"), "a secret in a comment");
    }

    #[test]
    fn every_name_the_config_errors_suggest_is_converted() {
        for (theirs, _) in rocketgate::config::OAUTH2_PROXY_NAMES {
            let mut options = Options::default();
            let value = if is_list(theirs) {
                Value::Array(vec![string("http://127.0.0.1:1/")])
            } else if *theirs == "redirect_url" {
                string("https://a.example/oauth2/callback")
            } else if *theirs == "session_store_type" {
                string("redis")
            } else {
                string("x")
            };
            options.set(theirs, value, Origin::File);
            let c = convert(&options, SECRET);
            assert!(
                c.mapped.iter().any(|m| m.split(", ").any(|n| n == *theirs))
                    || c.unmapped.iter().any(|(n, why)| n == theirs && !why.starts_with("no rocketgate equivalent")),
                "{theirs} is suggested but not converted:\n{}",
                c.toml
            );
        }
    }

    #[test]
    fn redis_sentinel_and_cluster_options_convert_to_their_keys() {
        let (t, _) = converted(
            "session_store_type = \"redis\"\nredis_use_sentinel = true\nredis_sentinel_master_name = \"mymaster\"\nredis_sentinel_connection_urls = [\"redis://10.0.0.1:26379\", \"redis://10.0.0.2:26379\"]\n",
            &[],
            "",
        );
        assert_eq!(t["session"]["store"].as_str(), Some("redis"));
        assert_eq!(
            t["session"]["redis_sentinel_master"].as_str(),
            Some("mymaster")
        );
        assert_eq!(
            t["session"]["redis_sentinels"].as_array().map(Vec::len),
            Some(2)
        );
        let (t, _) = converted(
            "",
            &[
                ("OAUTH2_PROXY_SESSION_STORE_TYPE", "redis"),
                ("OAUTH2_PROXY_REDIS_USE_CLUSTER", "true"),
                (
                    "OAUTH2_PROXY_REDIS_CLUSTER_CONNECTION_URLS",
                    "redis://a:6379,redis://b:6379",
                ),
            ],
            "",
        );
        let nodes: Vec<&str> = t["session"]["redis_cluster_nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(nodes, ["redis://a:6379", "redis://b:6379"]);
        let (_, c) = converted("redis_connection_url = \"redis://x\"\n", &[], "");
        assert!(
            c.toml
                .contains("# - redis_connection_url: used only with session_store_type"),
            "{}",
            c.toml
        );
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"--a=1 --b "two words" --c='x y'"#).unwrap(),
            ["--a=1", "--b", "two words", "--c=x y"]
        );
        assert!(split_words("--a \"open").is_err());
    }
}
