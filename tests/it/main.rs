//! rocketgate end to end: real servers on 127.0.0.1 ports (the proxy, the Rocketpunch
//! stand-in, echo upstreams, redis-server, nginx, child processes of the binary), driven as
//! clients would drive them. One test binary: one link for the whole suite.

mod support;

mod allow_lists;
mod architecture;
mod assertion;
mod audit_log;
mod bearer;
mod cookie_keys;
mod demo_config;
mod demo_routes;
mod forward_auth;
mod forwarded_headers;
mod front_proxies;
mod grpc;
mod h2spec;
mod header_spoofing;
mod hostile_clients;
mod limits;
mod log_secrets;
mod login;
mod many_apps;
mod mesh_shapes;
mod migrate;
mod nginx;
mod nginx_routes;
mod observability;
mod pages;
mod properties;
mod provider_errors;
mod proxy;
mod redirects;
mod redis;
mod redis_failover;
mod refresh;
mod reload;
mod route_policy;
mod routing;
mod session_cookies;
mod shutdown;
mod store;
mod tls;
mod tracing;
