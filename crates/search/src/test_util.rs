//! Helpers shared by the unit tests: readable renderings of instants and index entries, and the
//! vendored official examples.

use serde_json::Value;
use store::{IndexEntry, IndexValue};

/// Formats microseconds since the epoch as `YYYY-MM-DDThh:mm:ss.ffffffZ`, with `-∞`/`+∞` for the
/// open ends of a period (Howard Hinnant's `civil_from_days`).
pub(crate) fn instant(micros: i64) -> String {
    match micros {
        i64::MIN => return "-∞".to_owned(),
        i64::MAX => return "+∞".to_owned(),
        _ => {}
    }
    let days = micros.div_euclid(86_400_000_000);
    let of_day = micros.rem_euclid(86_400_000_000);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let seconds = of_day / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        of_day % 1_000_000
    )
}

/// One line per entry: `param kind value`.
pub(crate) fn render_entries(entries: &[IndexEntry]) -> String {
    entries
        .iter()
        .map(|entry| format!("{} {}", entry.param, render_value(&entry.value)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_value(value: &IndexValue) -> String {
    let or_dash = |part: &Option<String>| part.clone().unwrap_or_else(|| "-".to_owned());
    match value {
        IndexValue::Token { system, code, text } => {
            let mut rendered = format!("token {}|{}", or_dash(system), or_dash(code));
            if let Some(text) = text {
                rendered.push_str(&format!(" text={text:?}"));
            }
            rendered
        }
        IndexValue::String { normalized, exact } => {
            format!("string {normalized:?} exact={exact:?}")
        }
        IndexValue::Date { low, high } => format!("date {} .. {}", instant(*low), instant(*high)),
        IndexValue::Reference {
            target_type,
            target_id,
            url,
        } => match url {
            Some(url) => format!("reference url={url}"),
            None => format!("reference {}/{}", or_dash(target_type), or_dash(target_id)),
        },
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
        } => format!(
            "quantity {value:?} system={} code={} unit={}",
            or_dash(system),
            or_dash(code),
            or_dash(unit)
        ),
        IndexValue::Number { value } => format!("number {value:?}"),
        IndexValue::Uri { value } => format!("uri {value}"),
    }
}

/// An official example from `fixtures/r4-examples/`.
pub(crate) fn example(file: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/r4-examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}
