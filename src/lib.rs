//! rocketgate: an authenticating reverse proxy for apps that sign users in with Rocketpunch.
//!
//! Request path: [`router`] → session ([`session`], [`gate`]) → access ([`access`]) →
//! identity headers ([`identity`]) → [`proxy`]. Errors from every step become responses in
//! exactly one place, [`respond`].
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod app;
pub mod assertion;
pub mod bearer;
pub mod body;
pub mod cli;
pub mod config;
pub mod demo;
pub mod endpoints;
pub mod forwarded;
pub mod gate;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod proxy;
pub mod refresh;
pub mod respond;
pub mod router;
pub mod server;
pub mod session;
pub mod tls;
