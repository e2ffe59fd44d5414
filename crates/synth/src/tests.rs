//! Unit tests of the pieces: check digits, dates, the random generator, the tables.

use crate::codes;
use crate::date::Date;
use crate::rng::Rng;
use crate::tables::Tables;

#[test]
fn insurer_check_digit_matches_known_numbers() {
    // 全国健康保険協会 東京支部 (協会けんぽ) is 01130012: its check digit is the 2.
    assert_eq!(codes::insurer_number(1, 13, 1), "01130012");
    assert!(codes::is_valid_insurer_number("01130012"));
    assert!(!codes::is_valid_insurer_number("01130013"));
    assert!(!codes::is_valid_insurer_number("0113001"));
    assert!(!codes::is_valid_insurer_number("0113001a"));
    // A six-digit National Health Insurance number written with two leading zeros keeps its
    // check digit: zeros weigh nothing.
    let nhi = codes::insurer_number(0, 13, 101);
    assert_eq!(&nhi[..2], "00");
    assert_eq!(codes::modulus10_w21(&nhi[2..7]), nhi.as_bytes()[7] - b'0');
}

#[test]
fn institution_number_has_prefecture_table_and_check_digit() {
    // The JP-CLINS examples' 1318814790: Tokyo, 医科, 医療機関コード 8814790 whose 7th digit checks.
    assert!(codes::is_valid_institution_number("1318814790"));
    assert!(!codes::is_valid_institution_number("1318814791"));
    // Prefecture 48 does not exist; point-table digit 2 is not used.
    assert!(!codes::is_valid_institution_number("4818814790"));
    assert!(!codes::is_valid_institution_number("1328814790"));
    let number = codes::institution_number(39, 1, 2, 1234);
    assert_eq!(number.len(), 10);
    assert!(codes::is_valid_institution_number(&number));
}

#[test]
fn municipality_check_digit_matches_known_codes() {
    for known in ["131016", "011002", "271004", "392014", "472018"] {
        assert!(codes::is_valid_municipality_code(known), "{known}");
        assert_eq!(codes::municipality_code(&known[..5]), known);
    }
    assert!(!codes::is_valid_municipality_code("131017"));
}

#[test]
fn member_id_accepts_fullwidth_digits_and_empty_symbol() {
    assert!(codes::is_valid_member_id("01130012:1234:５６７:00"));
    assert!(
        codes::is_valid_member_id("39131005::12345678:00")
            == codes::is_valid_insurer_number("39131005")
    );
    assert!(!codes::is_valid_member_id("01130012:1234:567"));
    assert!(!codes::is_valid_member_id("01130013:1234:567:00"));
    assert_eq!(codes::to_halfwidth("１８７：ＡＢ"), "187:AB");
    assert_eq!(codes::to_fullwidth_digits("a187"), "a１８７");
}

#[test]
fn bundle_identifier_needs_facility_year_and_local_id() {
    let value = codes::bundle_identifier("1318814790", 2024, "0123-IDa-203949583949");
    assert_eq!(value, "1318814790^2024^0123-IDa-203949583949");
    assert!(codes::is_valid_bundle_identifier(&value));
    assert!(!codes::is_valid_bundle_identifier("1318814790^24^x"));
    assert!(!codes::is_valid_bundle_identifier("1318814790^2024^"));
    assert!(!codes::is_valid_bundle_identifier("1318814791^2024^x"));
}

#[test]
fn dates_round_trip_and_count_ages() {
    let day = Date::from_ymd(2024, 2, 29);
    assert_eq!(day.to_string(), "2024-02-29");
    assert_eq!(day.plus_days(1).to_string(), "2024-03-01");
    assert_eq!(
        Date::from_ymd(1970, 1, 1).days_since(Date::from_ymd(1969, 12, 31)),
        1
    );
    assert_eq!(Date::parse("2026-10-01"), Some(Date::from_ymd(2026, 10, 1)));
    assert_eq!(Date::parse("2026-02-30"), None);
    assert_eq!(Date::parse("2026-1"), None);
    assert_eq!(
        Date::from_ymd(2026, 10, 1).years_since(Date::from_ymd(1950, 10, 2)),
        75
    );
    assert_eq!(
        Date::from_ymd(2026, 10, 1).years_since(Date::from_ymd(1950, 10, 1)),
        76
    );
    assert_eq!(day.at(9, 5), "2024-02-29T09:05:00+09:00");
    for offset in [-800_000, -1, 0, 59, 60, 365, 12_345, 800_000] {
        let date = Date::from_ymd(2000, 3, 1).plus_days(offset);
        let (year, month, day) = date.ymd();
        assert_eq!(Date::from_ymd(year, month, day), date);
    }
}

#[test]
fn rng_keeps_the_benchmark_sequence_and_streams_differ() {
    // The first values of SplitMix64 seeded with 0 (the benchmarks' generator, unchanged).
    let mut random = Rng::new(0);
    assert_eq!(random.next_u64(), 0xE220_A839_7B1D_CDAF);
    let first: Vec<u64> = (0..4)
        .map(|stream| Rng::for_stream(1, stream).next_u64())
        .collect();
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len());
    let mut weighted = Rng::new(9);
    for _ in 0..1000 {
        assert_eq!(weighted.weighted(&[0, 5, 0]), 1);
    }
    let mut normal = Rng::new(3);
    let mean: f64 = (0..10_000).map(|_| normal.normal(10.0, 2.0)).sum::<f64>() / 10_000.0;
    assert!((mean - 10.0).abs() < 0.1, "{mean}");
}

#[test]
fn tables_parse_and_their_codes_are_well_formed() {
    let tables = Tables::get();
    assert_eq!(tables.prefectures.len(), 47);
    assert!(
        tables
            .prefectures
            .iter()
            .all(|prefecture| !prefecture.municipalities.is_empty())
    );
    assert!(tables.municipalities.iter().all(|municipality| {
        codes::is_valid_municipality_code(&municipality.code)
            && municipality.code[..2] == *tables.prefectures[municipality.prefecture].code
            && municipality
                .postal3
                .iter()
                .all(|prefix| prefix.len() == 3 && prefix.bytes().all(|byte| byte.is_ascii_digit()))
    }));
    assert!(tables.family_names.len() >= 100);
    assert!(tables.given_names.iter().all(|name| {
        name.kana
            .chars()
            .all(|character| ('\u{30A0}'..='\u{30FF}').contains(&character))
    }));
    assert!(tables.family_names.iter().all(|name| {
        name.kana
            .chars()
            .all(|character| ('\u{30A0}'..='\u{30FF}').contains(&character))
    }));
    for condition in &tables.conditions {
        assert_eq!(condition.medis.len(), 8, "{}", condition.key);
        assert!(condition.medis.bytes().all(|byte| byte.is_ascii_digit()));
        assert!(condition.icd10.len() >= 3 && condition.icd10.is_ascii());
        assert!(["ig-example", "jp-core", "public-code", "unverified"].contains(&condition.source));
    }
    for drug in &tables.drugs {
        assert_eq!(drug.yj.len(), 12, "{}", drug.key);
        assert!(drug.yj[..7].bytes().all(|byte| byte.is_ascii_digit()));
        assert!(!drug.treats.is_empty());
    }
    for lab in &tables.labs {
        match lab.group {
            Some(group) => assert!(tables.core_labo.contains(group, lab.jlac10), "{}", lab.key),
            None => assert_eq!(lab.key, "eGFR"),
        }
        assert_eq!(lab.jlac10.len(), 17);
    }
    for lab in &tables.infection_labs {
        assert!(
            tables.infection_labo.contains(lab.group, lab.jlac10),
            "{}",
            lab.key
        );
    }
    assert_eq!(
        tables.core_labo.url,
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS"
    );
}

#[test]
fn facility_table_has_valid_unique_numbers_in_every_prefecture() {
    let tables = Tables::get();
    let mut numbers: Vec<&str> = tables
        .facilities
        .iter()
        .map(|facility| facility.number.as_str())
        .collect();
    assert!(
        numbers
            .iter()
            .all(|number| codes::is_valid_institution_number(number))
    );
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), tables.facilities.len());
    for facility in &tables.facilities {
        assert_eq!(
            &facility.number[..2],
            tables.prefectures[facility.prefecture].code
        );
        assert_eq!(
            tables.municipalities[facility.municipality].prefecture,
            facility.prefecture
        );
    }
}
