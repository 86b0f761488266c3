//! Secret strings (client secrets, Redis URLs with passwords, tokens) that never print
//! themselves: `Debug` says `<redacted>`, and reading the value takes an explicit call.

use std::fmt;

/// A secret string that never prints itself.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
