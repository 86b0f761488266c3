//! `rocketgate explain`: which route a URL goes to, where it ends up, and whether a given
//! user may pass, and by which rule. How an operator answers "why was I denied?" without
//! reading logs.

use std::process::ExitCode;

use rocketgate::access::{Member, RequestPath, policy};
use rocketgate::config::Config;
use rocketgate::routes::{self, request_host};
use url::Url;

/// Who to decide for; every field optional (an anonymous user with no email).
pub struct Asking {
    pub url: String,
    pub method: String,
    pub email: Option<String>,
    pub user: Option<String>,
    pub groups: Vec<String>,
}

/// Exit 0: allowed (or no sign-in needed); 1: denied; 2: no route, or a URL no route could
/// serve.
pub fn explain(config: &Config, asking: &Asking) -> ExitCode {
    match decide(config, asking) {
        Ok((lines, allowed)) => {
            for line in lines {
                println!("{line}");
            }
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(why) => {
            println!("{why}");
            ExitCode::from(2)
        }
    }
}

/// The lines to print and whether the request passes; `Err` when no route serves it.
fn decide(config: &Config, asking: &Asking) -> Result<(Vec<String>, bool), String> {
    let url = Url::parse(&asking.url).map_err(|e| format!("--url: {e}"))?;
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err("--url: needs a host".into()),
    };
    // The path as the client would send it: `Url` resolves `..` and `.`, which the proxy
    // refuses instead.
    let raw_path = asking
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .and_then(|path| path.split(['?', '#']).next())
        .unwrap_or("/");
    let path =
        RequestPath::parse(raw_path).map_err(|e| format!("refused before routing (400): {e}"))?;
    let host = request_host(&authority);
    let Some(route) = config.routes.pick(host.as_deref(), path.as_str()) else {
        return Err(format!(
            "no route: {authority}{} matches no [[routes]] entry and there is no top-level \
             upstream (404)",
            path.as_str()
        ));
    };
    let mut lines = vec![format!(
        "route:     {} (host {}, path {})",
        route.name, route.host, route.path
    )];
    let forwarded_path = if route.strip_prefix {
        route.path.strip(raw_path)
    } else {
        raw_path.to_owned()
    };
    let mut target = route.target.clone();
    let base = target.path().trim_end_matches('/').to_owned();
    target.set_path(&format!("{base}{forwarded_path}"));
    target.set_query(url.query());
    lines.push(format!("upstream:  {}", route.target));
    lines.push(format!("final URL: {target}"));
    lines.push(format!(
        "Host:      {}",
        if route.preserve_host {
            format!("{authority} (the client's)")
        } else {
            format!(
                "{} (the upstream's)",
                &route.target[url::Position::BeforeHost..url::Position::AfterPort]
            )
        }
    ));
    let method = asking
        .method
        .parse::<http::Method>()
        .map_err(|_| format!("--method: {:?} is not a method", asking.method))?;
    if route.public {
        lines.push("decision:  allowed: public route, no sign-in".into());
        return Ok((lines, true));
    }
    if config.access.skip_routes.matches(&method, &path) {
        lines.push("decision:  allowed: access.skip_auth_routes matches, no sign-in".into());
        return Ok((lines, true));
    }
    let user = asking.user.as_deref().unwrap_or("-");
    let member = Member {
        user,
        email: asking.email.as_deref(),
        reported: &asking.groups,
    };
    let groups = config.groups.of(&member);
    lines.push(format!(
        "identity:  user {user}, email {}, groups {}",
        asking.email.as_deref().unwrap_or("-"),
        if groups.is_empty() {
            "-".to_owned()
        } else {
            groups.join(",")
        }
    ));
    let layers = routes::layers(&config.access.emails, Some(route), None);
    match policy::check(layers, &member, &groups) {
        Ok(()) => {
            lines.push("decision:  allowed".into());
            Ok((lines, true))
        }
        Err(denied) => {
            lines.push(format!("decision:  denied (403) by {denied}"));
            Ok((lines, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        rocketgate::config::load_from_str(
            r#"
public_url = "https://auth.example.com"
upstream = "http://127.0.0.1:9000"
[[routes]]
host = "grafana.example.com"
upstream = "http://127.0.0.1:3000/base/"
allowed_groups = ["ops"]
[[routes]]
host = "grafana.example.com"
path = "/api"
upstream = "http://127.0.0.1:3001"
strip_prefix = true
preserve_host = false
[[routes]]
path = "/docs"
upstream = "http://127.0.0.1:3002"
public = true
[groups]
ops = { users = ["1001"] }
[access]
allowed_email_domains = ["example.com"]
[provider]
client_id = "id"
client_secret = "secret"
[cookie]
secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
domain = "example.com"
"#,
            &Default::default(),
        )
        .unwrap()
    }

    fn asking(url: &str, user: Option<&str>, email: Option<&str>) -> Asking {
        Asking {
            url: url.into(),
            method: "GET".into(),
            email: email.map(str::to_owned),
            user: user.map(str::to_owned),
            groups: Vec::new(),
        }
    }

    #[test]
    fn names_route_final_url_and_rule() {
        let c = config();
        let (lines, allowed) = decide(
            &c,
            &asking(
                "https://grafana.example.com/d/1?x=1",
                Some("1001"),
                Some("ada@example.com"),
            ),
        )
        .unwrap();
        assert!(allowed, "{lines:#?}");
        assert!(lines[0].starts_with("route:     routes[0]"), "{lines:#?}");
        assert_eq!(lines[2], "final URL: http://127.0.0.1:3000/base/d/1?x=1");
        let (lines, allowed) = decide(
            &c,
            &asking(
                "https://grafana.example.com/",
                Some("1002"),
                Some("grace@example.com"),
            ),
        )
        .unwrap();
        assert!(!allowed);
        assert_eq!(
            lines.last().unwrap(),
            "decision:  denied (403) by routes[0].allowed_groups"
        );
        let (lines, allowed) = decide(
            &c,
            &asking("https://x.org/", Some("1"), Some("eve@evil.com")),
        )
        .unwrap();
        assert!(!allowed);
        assert!(lines[0].starts_with("route:     upstream"), "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            "decision:  denied (403) by access.allowed_email_domains"
        );
    }

    #[test]
    fn strip_prefix_public_and_bad_paths() {
        let c = config();
        let (lines, _) = decide(
            &c,
            &asking("https://grafana.example.com/api/v1/q", None, None),
        )
        .unwrap();
        assert_eq!(lines[2], "final URL: http://127.0.0.1:3001/v1/q");
        assert_eq!(lines[3], "Host:      127.0.0.1:3001 (the upstream's)");
        let (lines, allowed) = decide(&c, &asking("http://any.org/docs/x", None, None)).unwrap();
        assert!(allowed);
        assert!(lines.last().unwrap().contains("public route"));
        assert!(decide(&c, &asking("http://a.org/x%2Fy", None, None)).is_err());
        // The proxy refuses dot segments; `explain` must not resolve them first.
        let refused = decide(
            &c,
            &asking("https://grafana.example.com/docs/../d", None, None),
        );
        assert!(refused.unwrap_err().contains("400"));
    }
}
