//! JP-CLINS (電子カルテ情報共有サービス) rules: what a valid submission is, the identifiers patients,
//! facilities and submissions are keyed by, and the flags that restrict who sees what.
//!
//! Pure: no IO, no async. Profile rules (cardinalities, fixed values, slices, small required bindings)
//! are derived from the JP-CLINS FHIR packages by `data/derive.py` into `data/profiles.json` and
//! compiled in; the invariants the profiles state in FHIRPath and the guide's prose rules are
//! hand-written and cite their source. `docs/jp-clins.md` lists every rule.
//!
//! Nothing this crate reports contains a value from a resource: issues and errors name the element and
//! the rule, because resources and identifiers are patient data.

mod flags;
mod ids;
mod profile;
mod resource;
mod submission;

pub use flags::{Flags, INDICATION_SYSTEM, flags};
pub use ids::{
    BUNDLE_IDENTIFIER_SYSTEM, BundleIdentifier, FACILITY_PATIENT_ID_PREFIX, FacilityPatientId,
    INSTITUTION_NUMBER_SYSTEM, INSURED_PERSON_SYSTEM, IdError, InstitutionNumber, InsuredPersonId,
    PUBLIC_PAYER_SYSTEM, PointTable, PublicPayerId, bundle_identifier,
    facility_of_patient_id_system, institution_number, insured_person_id, public_payer_id,
};
pub use resource::{
    DEPARTMENT_EXTENSION, INSTITUTION_NUMBER_EXTENSION, lab_systems, medication_systems, profiles,
    validate_resource,
};
pub use submission::{
    BUNDLE_RESOURCE_TYPE_SYSTEM, DocumentKind, InformationItem, MAX_SUBMISSION_BYTES, PatientKeys,
    Submission, SubmissionKind, bundle_profiles, validate_submission,
};
