//! Token attacks through `POST /auth/token` and with bearer tokens on `/fhir`: each refused with
//! 401 and recorded in the audit trail.
