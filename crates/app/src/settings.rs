//! Typed settings of the use-case layer, validated once at start-up.

/// What the use cases need to know about the deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Page size when a search gives no `_count`.
    pub default_count: u32,
    /// Largest page size honoured; larger `_count` values are clamped.
    pub max_count: u32,
    /// Largest number of entries accepted in one transaction or batch Bundle.
    pub max_bundle_entries: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_count: 50,
            max_count: 1000,
            max_bundle_entries: 20_000,
        }
    }
}
