//! The policy table: what product.md's principals may be granted, printed as a snapshot so that
//! any change to it shows in review.

use expect_test::expect;

use super::*;
use crate::scope::parse_requested;

#[test]
fn the_table_as_granted_to_each_kind_and_role_asking_for_everything() {
    let everything = parse_requested("system/*.cruds");
    let mut table = String::new();
    for row in &POLICY {
        for role in row.roles {
            let granted = grant(row.kind, *role, &everything);
            table.push_str(&format!("{} {}: {granted}\n", row.kind.code(), role.code()));
        }
    }
    expect![[r#"
        hospital doctor: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        hospital dentist: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        hospital nurse: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        hospital pharmacist: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        hospital clerk: system/Patient.rs system/Condition.cud system/Observation.cud system/AllergyIntolerance.cud system/MedicationRequest.cud system/Bundle.cud system/Consent.crs
        hospital administrator: system/Patient.rs system/Condition.cud system/Observation.cud system/AllergyIntolerance.cud system/MedicationRequest.cud system/Bundle.cud system/Consent.crs
        clinic doctor: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        clinic dentist: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        clinic nurse: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        clinic pharmacist: system/Patient.rs system/Condition.cruds system/Observation.cruds system/AllergyIntolerance.cruds system/MedicationRequest.cruds system/Bundle.cruds system/Consent.crs
        clinic clerk: system/Patient.rs system/Condition.cud system/Observation.cud system/AllergyIntolerance.cud system/MedicationRequest.cud system/Bundle.cud system/Consent.crs
        clinic administrator: system/Patient.rs system/Condition.cud system/Observation.cud system/AllergyIntolerance.cud system/MedicationRequest.cud system/Bundle.cud system/Consent.crs
        pharmacy pharmacist: system/Patient.rs system/Observation.rs system/AllergyIntolerance.rs system/MedicationRequest.rs system/Consent.crs
        pharmacy clerk: system/Patient.rs system/Consent.crs
        pharmacy administrator: system/Patient.rs system/Consent.crs
        public-health-centre public-health-officer: system/Patient.rs system/Condition.rs system/Observation.rs system/Bundle.rs
        public-health-centre clerk: system/Patient.rs
        public-health-centre administrator: system/Patient.rs
        municipality municipal-officer: system/Bundle.rs
        municipality clerk: 
        municipality administrator: 
        care-provider care-worker: system/Patient.rs system/AllergyIntolerance.rs system/MedicationRequest.rs
        care-provider clerk: system/Patient.rs
        care-provider administrator: system/Patient.rs
        insurer insurer-staff: system/Bundle.rs
        insurer clerk: 
        insurer administrator: 
    "#]]
    .assert_eq(&table);
}

#[test]
fn product_rules_hold() {
    let everything = parse_requested("system/*.cruds");
    // No organisation ever reads the audit log through a token.
    for kind in OrganisationKind::ALL {
        for role in Role::ALL {
            assert!(
                grant(kind, role, &everything)
                    .permissions("AuditEvent")
                    .is_empty()
            );
        }
    }
    // Pharmacies never see diagnoses; municipalities and insurers only documents.
    assert!(ceiling(OrganisationKind::Pharmacy, Role::Pharmacist, "Condition").is_empty());
    for kind in [OrganisationKind::Municipality, OrganisationKind::Insurer] {
        let row = policy(kind);
        assert_eq!(row.scopes.len(), 1);
        assert_eq!(row.scopes[0].0, "Bundle");
    }
    // Only hospital doctors may hold the emergency privilege.
    for row in &POLICY {
        let expected: &[Role] = match row.kind {
            OrganisationKind::Hospital => &[Role::Doctor],
            _ => &[],
        };
        assert_eq!(row.emergency_roles, expected);
        assert_eq!(
            row.purposes.contains(&PurposeOfUse::EmergencyTreatment),
            !expected.is_empty()
        );
    }
    // Every kind has a row.
    for kind in OrganisationKind::ALL {
        assert_eq!(policy(kind).kind, kind);
    }
}

#[test]
fn requests_are_intersected_not_widened() {
    let asked = parse_requested("system/Observation.r system/Observation.s system/Condition.c");
    let granted = grant(
        OrganisationKind::PublicHealthCentre,
        Role::PublicHealthOfficer,
        &asked,
    );
    assert_eq!(granted.to_string(), "system/Observation.rs");
}
