#![forbid(unsafe_code)]
pub mod access;
