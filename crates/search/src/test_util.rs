//! Helpers shared by the unit tests: readable renderings of instants and index entries, and the
//! vendored official examples.

use serde_json::Value;
use store::{IndexEntry, IndexValue};

/// Formats microseconds since the epoch as `YYYY-MM-DDThh:mm:ss.ffffffZ`, with `-∞`/`+∞` for the
/// open ends of a period.
pub(crate) fn instant(micros: i64) -> String {
    match micros {
        i64::MIN => return "-∞".to_owned(),
        i64::MAX => return "+∞".to_owned(),
        _ => {}
    }
    let days = micros.div_euclid(86_400_000_000);
    let of_day = micros.rem_euclid(86_400_000_000);
    let (year, month, day) = civil::civil_from_days(days);
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
