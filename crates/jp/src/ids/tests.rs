//! Identifier parsing: canonical forms, full-width folding, and refusals that name the rule.

use expect_test::{Expect, expect};

use super::*;

/// Parses an insured-person id and shows the canonical form or the error.
fn check_insured(input: &str, expected: Expect) {
    let shown = match insured_person_id(input) {
        Ok(id) => format!("ok {id}"),
        Err(error) => format!("error {error}"),
    };
    expected.assert_eq(&shown);
}

#[test]
fn the_guide_examples_are_accepted_and_keep_empty_parts() {
    check_insured(
        "00012345:あいう:１８７:05",
        expect!["ok 00012345:あいう:187:05"],
    );
    check_insured("00012345::１８７:", expect!["ok 00012345::187:"]);
    check_insured("00012345:ABC:187:", expect!["ok 00012345:ABC:187:"]);
}

#[test]
fn full_width_and_half_width_letters_and_digits_match() {
    let full = insured_person_id("06123456:ＡＢ１２:３４５６:01").unwrap();
    let half = insured_person_id("06123456:AB12:3456:01").unwrap();
    assert_eq!(full, half);
    assert_eq!(full.to_string(), "06123456:AB12:3456:01");
    assert_eq!(full.symbol(), "AB12");
    assert_eq!(full.number(), "3456");
    assert_eq!(full.branch(), "01");
    assert_eq!(full.insurer(), "06123456");
}

#[test]
fn kana_kanji_and_full_width_symbols_are_kept_as_sent() {
    check_insured(
        "06123456:１２－３４:５６７８:",
        expect!["ok 06123456:１２－３４:5678:"],
    );
    check_insured(
        "39123456:東京あ１:９９:",
        expect!["ok 39123456:東京あ１:99:"],
    );
    // Decomposed kana (か + combining dakuten) and precomposed が are the same symbol.
    assert_eq!(
        insured_person_id("00012345:か\u{3099}:1:").unwrap(),
        insured_person_id("00012345:が:1:").unwrap()
    );
}

#[test]
fn malformed_ids_are_refused_naming_the_part() {
    check_insured(
        "12345:あいう:187:05",
        expect![
            "error the insurer number (first part) must be exactly 8 half-width digits, zero-padded"
        ],
    );
    check_insured(
        "０００１２３４５:あいう:187:05",
        expect![
            "error the insurer number (first part) must be exactly 8 half-width digits, zero-padded"
        ],
    );
    check_insured(
        "00012345:あいう:187",
        expect![
            "error an insured-person identifier must be 4 parts joined by the half-width colon `:`"
        ],
    );
    check_insured(
        "00012345：あいう：187：05",
        expect![
            "error an insured-person identifier must be 4 parts joined by the half-width colon `:`"
        ],
    );
    check_insured(
        "00012345:あいう::05",
        expect!["error the number (third part) must be present"],
    );
    check_insured(
        "00012345:あいう:187:5",
        expect![
            "error the branch number (fourth part) must be empty or exactly 2 half-width digits"
        ],
    );
    check_insured(
        "00012345:あいう:187:０５",
        expect![
            "error the branch number (fourth part) must be empty or exactly 2 half-width digits"
        ],
    );
    check_insured(
        "00012345:あ　い:187:05",
        expect![
            "error the symbol (second part) must be free of spaces (half- or full-width) and control characters"
        ],
    );
    check_insured(
        "00012345:AB１２:187:05",
        expect![
            "error the symbol (second part) must be either all half-width or all full-width letters and digits"
        ],
    );
    check_insured(
        "00012345:12-34:187:05",
        expect![
            "error the symbol (second part) must be entirely full-width when it contains kana, kanji or symbols"
        ],
    );
    check_insured(
        "00012345:ｱｲｳ:187:05",
        expect![
            "error the symbol (second part) must be entirely full-width when it contains kana, kanji or symbols"
        ],
    );
}

#[test]
fn errors_never_contain_the_value() {
    let secret = "00012345:やまだ:98765:0X";
    let error = insured_person_id(secret).unwrap_err().to_string();
    for part in ["やまだ", "98765", "0X", "00012345"] {
        assert!(!error.contains(part), "{error}");
    }
}

#[test]
fn public_payer_ids_have_an_empty_symbol_and_branch() {
    let id = public_payer_id("12123456::１２３４５６７:").unwrap();
    assert_eq!(id.to_string(), "12123456::1234567:");
    assert_eq!(id.payer(), "12123456");
    assert_eq!(id.recipient(), "1234567");
    assert_eq!(
        public_payer_id("12123456:あ:1234567:")
            .unwrap_err()
            .to_string(),
        "the second and fourth parts of a public-assistance recipient identifier must be empty"
    );
    assert_eq!(
        public_payer_id("12123456::123456:")
            .unwrap_err()
            .to_string(),
        "the recipient number (third part) must be 7 characters"
    );
}

#[test]
fn institution_numbers_know_prefecture_and_point_table() {
    let number = institution_number("1318814790").unwrap();
    assert_eq!(number.prefecture(), 13);
    assert_eq!(number.point_table(), PointTable::Medical);
    assert_eq!(number.code(), "8814790");
    assert_eq!(number.to_string(), "1318814790");
    assert_eq!(
        institution_number("4734123456").unwrap().point_table(),
        PointTable::Dental
    );
    assert_eq!(
        institution_number("0141234567").unwrap().point_table(),
        PointTable::Pharmacy
    );
    assert!(!PointTable::Pharmacy.may_submit());
    assert!(PointTable::Dental.may_submit());
}

#[test]
fn institution_numbers_with_bad_prefecture_point_table_or_length_are_refused() {
    let refused = |value: &str| institution_number(value).unwrap_err().to_string();
    assert_eq!(
        refused("4811234567"),
        "the prefecture code of an institution number (digits 1-2) must be 01 to 47"
    );
    assert_eq!(
        refused("0011234567"),
        "the prefecture code of an institution number (digits 1-2) must be 01 to 47"
    );
    assert_eq!(
        refused("1321234567"),
        "the point-table digit of an institution number (digit 3) must be 1 (medical), 3 (dental), 4 (pharmacy) or 6 (visiting nursing)"
    );
    assert_eq!(
        refused("131234567"),
        "an institution number must be exactly 10 half-width digits"
    );
    assert_eq!(
        refused("１３１８８１４７９０"),
        "an institution number must be exactly 10 half-width digits"
    );
}

#[test]
fn bundle_identifiers_parse_into_facility_year_and_local_id() {
    let id = bundle_identifier("1318814790^2024^0123-IDa-203949583949").unwrap();
    assert_eq!(id.facility.as_str(), "1318814790");
    assert_eq!(id.year, 2024);
    assert_eq!(id.local, "0123-IDa-203949583949");
    assert_eq!(id.to_string(), "1318814790^2024^0123-IDa-203949583949");
}

#[test]
fn malformed_bundle_identifiers_are_refused() {
    let refused = |value: &str| bundle_identifier(value).unwrap_err().to_string();
    assert_eq!(
        refused("1318814790^2024"),
        "a bundle identifier must be 3 parts joined by the half-width caret `^`"
    );
    assert_eq!(
        refused("1318814790^2019^A1"),
        "the year of a bundle identifier (second part) must be 4 half-width digits from 2020 to 2039"
    );
    assert_eq!(
        refused("1318814790^2024^A_1"),
        "the local id of a bundle identifier (third part) must be 1 to 36 half-width letters, digits or hyphens"
    );
    assert_eq!(
        refused(&format!("1318814790^2024^{}", "A".repeat(37))),
        "the local id of a bundle identifier (third part) must be 1 to 36 half-width letters, digits or hyphens"
    );
    assert_eq!(
        refused("1348814790^2024^A1"),
        "the institution number of a bundle identifier must be a medical (1) or dental (3) facility"
    );
    assert_eq!(
        refused("9918814790^2024^A1"),
        "the prefecture code of an institution number (digits 1-2) must be 01 to 47"
    );
}

#[test]
fn facility_patient_id_systems_name_their_facility() {
    let system = "urn:oid:1.2.392.100495.20.3.51.11318814790";
    let facility = facility_of_patient_id_system(system).unwrap().unwrap();
    assert_eq!(facility.as_str(), "1318814790");
    let id = FacilityPatientId {
        facility,
        value: "000999739".to_owned(),
    };
    assert_eq!(id.system(), system);
    assert_eq!(
        facility_of_patient_id_system("urn:oid:1.2.3").unwrap(),
        None
    );
    assert!(facility_of_patient_id_system("urn:oid:1.2.392.100495.20.3.51.21318814790").is_err());
    assert!(facility_of_patient_id_system("urn:oid:1.2.392.100495.20.3.51.1131881479").is_err());
}
