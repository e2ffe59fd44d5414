//! The backend conformance suite: every storage behaviour scenario, written once against `&dyn Store`.
//! Each backend's integration tests call [`run_all`] with a factory that gives a fresh, empty store.
