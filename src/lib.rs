//! rocketgate: an authenticating reverse proxy for apps that sign users in with Rocketpunch.
//!
//! Every request goes through [`pipeline`], whose phases run top to bottom in one file:
//! accept, route, authenticate and authorize ([`gate`]), prepare the upstream request
//! ([`identity`], [`assertion`]), forward ([`proxy`]), respond ([`respond`], the one place
//! errors become answers), log. `docs/architecture.md` maps the modules.
#![forbid(unsafe_code)]
// The refresh task's future (store, token call, profile, each in a trace scope) nests deeper than
// the default layout query depth.
#![recursion_limit = "256"]

pub mod access;
pub mod app;
pub mod assertion;
pub mod audit;
pub mod bearer;
pub mod body;
pub mod config;
pub mod context;
pub mod endpoints;
pub mod error;
pub mod forwarded;
pub mod gate;
pub mod identity;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod pipeline;
pub mod proxy;
pub mod refresh;
pub mod reload;
pub mod respond;
pub mod routes;
pub mod secret;
pub mod server;
pub mod session;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tls;
pub mod trace;
