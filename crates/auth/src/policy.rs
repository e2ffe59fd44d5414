//! What each kind of organisation may be granted: the one table that decides which roles its
//! users may have, which purposes of use they may state, whether the emergency privilege exists
//! there, and which SMART scopes its tokens may carry. It follows the principals table of
//! `product.md`; `docs/auth.md` prints it.
//!
//! Scopes say what *kind* of interaction a token may attempt. They are the outer bound only:
//! consent, the patient's compartment, the 未告知/未提供 flags, the per-role data sets of
//! `app::allowed_types`, jurisdictions and "documents addressed to it" are decided per request by
//! the enforcement layer, which can only narrow what is granted here. The resource types below are
//! the ones that layer lets some member see, so that no type it would show is cut off here.
//!
//! | kind | roles | purposes of use | emergency privilege | scopes |
//! |---|---|---|---|---|
//! | hospital | doctor, dentist, nurse, pharmacist, clerk, administrator | TREAT, ETREAT | doctors | the clinical data set `.cruds`, Bundle.cruds, Consent.crs, directory `.rs` |
//! | clinic | doctor, dentist, nurse, pharmacist, clerk, administrator | TREAT | no | as hospital |
//! | pharmacy | pharmacist, clerk, administrator | TREAT | no | Patient, Observation, AllergyIntolerance, MedicationRequest `.rs`; Consent.crs; directory `.rs` |
//! | public-health-centre | public-health-officer, clerk, administrator | PUBHLTH | no | Patient, Condition, Observation, Bundle `.rs`; directory `.rs` |
//! | municipality | municipal-officer, clerk, administrator | COVERAGE | no | Bundle.rs; directory `.rs` |
//! | care-provider | care-worker, clerk, administrator | CAREMGT | no | Patient, AllergyIntolerance, MedicationRequest `.rs`; directory `.rs` |
//! | insurer | insurer-staff, clerk, administrator | POPHLTH | no | Bundle.rs; directory `.rs` |
//!
//! The clinical data set: Patient, Condition, AllergyIntolerance, Observation, MedicationRequest,
//! Composition, Encounter, DocumentReference, Specimen, ServiceRequest, CarePlan, Coverage. The
//! directory: Organization, Practitioner, PractitionerRole, Location.
//!
//! Clerks and administrators see no clinical data: they keep the writes (`c`, `u`, `d`) of their
//! organisation's row, but read and search (`r`, `s`) only the directory and `Consent`.
//!
//! Why: hospitals and clinics submit the 3 documents and 6 items (as Bundles or single resources)
//! and view them with consent; pharmacies view allergies, contraindications (AllergyIntolerance),
//! prescriptions (MedicationRequest) and labs (Observation), never diagnoses; public health
//! centres see reported cases (Condition, Observation) and the notifications delivered to them
//! (Bundle); municipalities and insurers only receive documents (Bundle: 主治医意見書, checkup
//! reports); care providers see medications and allergies. Hospitals, clinics and pharmacies
//! record consents given at their reception with the patient's card. Every member may read the
//! directory (no patient's data). `AuditEvent` is granted to no organisation: patients and privacy
//! officers read it through their own paths.

use crate::model::{OrganisationKind, PurposeOfUse, Role};
use crate::scope::{Permissions, RequestedScope, Scopes};

/// One row of the policy table.
#[derive(Debug)]
pub struct KindPolicy {
    /// The kind of organisation.
    pub kind: OrganisationKind,
    /// The roles its users may have.
    pub roles: &'static [Role],
    /// The purposes of use its users may state.
    pub purposes: &'static [PurposeOfUse],
    /// The roles that may hold the emergency privilege here (empty: nobody).
    pub emergency_roles: &'static [Role],
    /// The most its tokens may carry, per resource type, in groups.
    pub scopes: &'static [&'static [(&'static str, Permissions)]],
}

use OrganisationKind as K;
use Permissions as P;
use PurposeOfUse as U;
use Role as R;

/// Directory data: no patient's data; every member may read it.
pub const DIRECTORY: &[(&str, Permissions)] = &[
    ("Organization", P::RS),
    ("Practitioner", P::RS),
    ("PractitionerRole", P::RS),
    ("Location", P::RS),
];

/// What hospitals and clinics submit and view: the clinical data set, documents and
/// submissions (Bundle), and the consents taken at their reception.
const FACILITY: &[(&str, Permissions)] = &[
    ("Patient", P::CRUDS),
    ("Condition", P::CRUDS),
    ("AllergyIntolerance", P::CRUDS),
    ("Observation", P::CRUDS),
    ("MedicationRequest", P::CRUDS),
    ("Composition", P::CRUDS),
    ("Encounter", P::CRUDS),
    ("DocumentReference", P::CRUDS),
    ("Specimen", P::CRUDS),
    ("ServiceRequest", P::CRUDS),
    ("CarePlan", P::CRUDS),
    ("Coverage", P::CRUDS),
    ("Bundle", P::CRUDS),
    ("Consent", P::CRS),
];
const FACILITY_ROLES: &[Role] = &[
    R::Doctor,
    R::Dentist,
    R::Nurse,
    R::Pharmacist,
    R::Clerk,
    R::Administrator,
];

/// The policy table (module doc).
pub static POLICY: [KindPolicy; 7] = [
    KindPolicy {
        kind: K::Hospital,
        roles: FACILITY_ROLES,
        purposes: &[U::Treatment, U::EmergencyTreatment],
        emergency_roles: &[R::Doctor],
        scopes: &[FACILITY, DIRECTORY],
    },
    KindPolicy {
        kind: K::Clinic,
        roles: FACILITY_ROLES,
        purposes: &[U::Treatment],
        emergency_roles: &[],
        scopes: &[FACILITY, DIRECTORY],
    },
    KindPolicy {
        kind: K::Pharmacy,
        roles: &[R::Pharmacist, R::Clerk, R::Administrator],
        purposes: &[U::Treatment],
        emergency_roles: &[],
        scopes: &[
            &[
                ("Patient", P::RS),
                ("AllergyIntolerance", P::RS),
                ("Observation", P::RS),
                ("MedicationRequest", P::RS),
                ("Consent", P::CRS),
            ],
            DIRECTORY,
        ],
    },
    KindPolicy {
        kind: K::PublicHealthCentre,
        roles: &[R::PublicHealthOfficer, R::Clerk, R::Administrator],
        purposes: &[U::PublicHealth],
        emergency_roles: &[],
        scopes: &[
            &[
                ("Patient", P::RS),
                ("Condition", P::RS),
                ("Observation", P::RS),
                ("Bundle", P::RS),
            ],
            DIRECTORY,
        ],
    },
    KindPolicy {
        kind: K::Municipality,
        roles: &[R::MunicipalOfficer, R::Clerk, R::Administrator],
        purposes: &[U::Coverage],
        emergency_roles: &[],
        scopes: &[&[("Bundle", P::RS)], DIRECTORY],
    },
    KindPolicy {
        kind: K::CareProvider,
        roles: &[R::CareWorker, R::Clerk, R::Administrator],
        purposes: &[U::CareManagement],
        emergency_roles: &[],
        scopes: &[
            &[
                ("Patient", P::RS),
                ("AllergyIntolerance", P::RS),
                ("MedicationRequest", P::RS),
            ],
            DIRECTORY,
        ],
    },
    KindPolicy {
        kind: K::Insurer,
        roles: &[R::InsurerStaff, R::Clerk, R::Administrator],
        purposes: &[U::PopulationHealth],
        emergency_roles: &[],
        scopes: &[&[("Bundle", P::RS)], DIRECTORY],
    },
];

impl KindPolicy {
    /// The row's scopes, per resource type, in table order.
    pub fn grants(&self) -> impl Iterator<Item = (&'static str, Permissions)> {
        self.scopes.iter().flat_map(|group| group.iter().copied())
    }
}

/// Besides the directory, the one resource type clerks and administrators may read and search.
pub const CLERK_READABLE: &str = "Consent";

/// The row for `kind`.
pub fn policy(kind: OrganisationKind) -> &'static KindPolicy {
    POLICY
        .iter()
        .find(|row| row.kind == kind)
        .unwrap_or(&POLICY[0])
}

/// The most a user of `role` at an organisation of `kind` may hold on `resource_type`.
pub fn ceiling(kind: OrganisationKind, role: Role, resource_type: &str) -> Permissions {
    let allowed = policy(kind)
        .grants()
        .find(|(known, _)| *known == resource_type)
        .map_or(P::NONE, |(_, permissions)| permissions);
    let clerk_readable = resource_type == CLERK_READABLE
        || DIRECTORY.iter().any(|(known, _)| *known == resource_type);
    if role.reads_clinical_data() || clerk_readable {
        allowed
    } else {
        allowed.intersect(P::CUD)
    }
}

/// What to grant for `requested`: each requested scope (a type or `*`) intersected with the
/// ceiling of `kind` and `role`. What cannot be granted is dropped; the result may be empty.
pub fn grant(kind: OrganisationKind, role: Role, requested: &[RequestedScope]) -> Scopes {
    let grants = policy(kind)
        .grants()
        .filter_map(|(resource_type, _)| {
            let asked = requested
                .iter()
                .filter(|scope| scope.resource_type == "*" || scope.resource_type == resource_type)
                .fold(P::NONE, |all, scope| all.union(scope.permissions));
            let granted = asked.intersect(ceiling(kind, role, resource_type));
            (!granted.is_empty()).then(|| (resource_type.to_owned(), granted))
        })
        .collect();
    Scopes::from_grants(grants)
}

/// Every scope some organisation may be granted: `scopes_supported` of the SMART configuration.
pub fn scopes_supported() -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for row in &POLICY {
        for (resource_type, permissions) in row.grants() {
            let scope = format!("system/{resource_type}.{permissions}");
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    scopes
}

#[cfg(test)]
mod tests;
