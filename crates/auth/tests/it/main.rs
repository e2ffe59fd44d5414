//! The auth crate from the outside, as an attacker (or a careless client) would try it: one test
//! binary, one module per surface.

mod access_token;
mod discovery;
mod exchange;
mod jwks_url;
mod patient;
mod registry;
mod support;
