//! What tsunagu's benchmarks share. The benchmarks themselves are `harness = false` binaries in
//! `benches/` (run them with `cargo bench -p benches --bench <name>`; see `docs/benchmarks.md`):
//!
//! - `ingest_read_search`: transaction ingest, create, read and search through `app::App`.
//! - `http_read`: reads by id over HTTP on loopback against the real server.
//!
//! This library holds the deterministic synthetic population ([`population`]), loading it through
//! the transaction path ([`load`]), the system under test ([`setup`]), latency measurement with
//! exact percentiles ([`measure`]), reporting ([`report`]) and the server's security layer for the
//! secured HTTP runs ([`security`]). Timings are never asserted anywhere.

pub mod cpu;
pub mod http;
pub mod load;
pub mod measure;
pub mod population;
pub mod report;
pub mod rng;
pub mod security;
pub mod setup;
