//! Access decisions: who may pass ([`emails`]), which requests skip authentication
//! ([`routes`]), and where a browser may be sent after login or logout ([`redirect`]).
//!
//! Everything here is pure (no I/O, no clock) so that the security-relevant rules can be
//! tested exhaustively in isolation; the proxy only asks questions of these types.

pub mod emails;
pub mod policy;
pub mod redirect;
pub mod routes;

pub use emails::{EmailPolicy, EmailPolicyError};
pub use policy::{Denied, GroupDefinition, GroupError, Groups, Layer, Member, Rules};
pub use redirect::{DomainRule, RedirectPolicy, RedirectRuleError};
pub use routes::{PathError, RequestPath, SkipRoute, SkipRouteError, SkipRoutes};
