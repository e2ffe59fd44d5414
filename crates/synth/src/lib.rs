//! A deterministic Japanese synthetic population for tsunagu: the code tables it draws from (in
//! `data/`, with their sources in `data/SOURCES.md`), the identifier formats and check digits of
//! Japan's insurance system, calendar dates and a small deterministic random generator.

pub mod codes;
pub mod date;
pub mod rng;
pub mod tables;

#[cfg(test)]
mod tests;
