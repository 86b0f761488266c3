//! `rocketgate_requests_total{class,code,method,route}`: the one counter every request
//! touches, so counting is an atomic add on a handle found by index, not a locked family
//! look-up; and every label is from a closed set, so no client can grow the series.

use std::sync::OnceLock;

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::RouteKind;

/// The methods with a label of their own; any other is `other`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];
const METHOD_LABELS: usize = METHODS.len() + 1;

/// The status codes counted through a cached handle; others go through the family.
const COMMON_CODES: [u16; 24] = [
    200, 201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 413, 429,
    431, 500, 502, 503, 504,
];

/// A status code as a label: `100` to `599`, anything else (hyper allows up to 999) `other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) struct Code(u16);

impl EncodeLabelValue for Code {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        if (100..=599).contains(&self.0) {
            write!(encoder, "{}", self.0)
        } else {
            encoder.write_str("other")
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    class: &'static str,
    code: Code,
    method: &'static str,
    route: &'static str,
}

/// The requests counter and its cached handles.
pub(super) struct Requests {
    family: Family<RequestLabels, Counter>,
    cached: Box<[OnceLock<Counter>]>,
}

impl Requests {
    pub(super) fn new() -> Self {
        let slots = METHOD_LABELS * super::ROUTE_KINDS * COMMON_CODES.len();
        Self {
            family: Family::default(),
            cached: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    pub(super) fn family(&self) -> Family<RequestLabels, Counter> {
        self.family.clone()
    }

    pub(super) fn count(&self, status: u16, method: &Method, route: RouteKind) {
        let method_at = METHODS
            .iter()
            .position(|m| m == method)
            .unwrap_or(METHODS.len());
        let labels = || RequestLabels {
            class: class(status),
            code: Code(if (100..=599).contains(&status) {
                status
            } else {
                0
            }),
            method: METHODS.get(method_at).map_or("other", |m| m.as_str()),
            route: route.as_str(),
        };
        match COMMON_CODES.iter().position(|&c| c == status) {
            Some(code_at) => {
                let at =
                    (method_at * super::ROUTE_KINDS + route.index()) * COMMON_CODES.len() + code_at;
                if let Some(slot) = self.cached.get(at) {
                    slot.get_or_init(|| self.family.get_or_create(&labels()).clone())
                        .inc();
                }
            }
            None => {
                self.family.get_or_create(&labels()).inc();
            }
        }
    }
}

fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn exposition(requests: &Requests) -> String {
        let mut registry = Registry::default();
        registry.register("requests", "", requests.family());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn common_and_rare_codes_odd_methods_and_out_of_range_statuses() {
        let requests = Requests::new();
        requests.count(200, &Method::GET, RouteKind::Proxy);
        requests.count(200, &Method::GET, RouteKind::Proxy);
        requests.count(418, &Method::POST, RouteKind::Proxy);
        requests.count(
            502,
            &Method::from_bytes(b"PURGE").unwrap(),
            RouteKind::Proxy,
        );
        requests.count(799, &Method::GET, RouteKind::Auth);
        let text = exposition(&requests);
        for line in [
            r#"requests_total{class="2xx",code="200",method="GET",route="proxy"} 2"#,
            r#"requests_total{class="4xx",code="418",method="POST",route="proxy"} 1"#,
            r#"requests_total{class="5xx",code="502",method="other",route="proxy"} 1"#,
            r#"requests_total{class="5xx",code="other",method="GET",route="auth"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn a_thousand_invented_methods_make_one_series() {
        let requests = Requests::new();
        for i in 0..1000 {
            let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
            requests.count(404, &method, RouteKind::Proxy);
        }
        let text = exposition(&requests);
        assert_eq!(text.matches("requests_total{").count(), 1, "{text}");
        assert!(
            text.contains(r#"method="other",route="proxy"} 1000"#),
            "{text}"
        );
    }
}
