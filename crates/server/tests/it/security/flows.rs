//! Consent, emergency access, the audit trail, abuse limits.
