//! Number formatting and table layout.

use super::{Table, thousands};

#[test]
fn thousands_separators() {
    assert_eq!(thousands(0.0), "0");
    assert_eq!(thousands(999.4), "999");
    assert_eq!(thousands(1000.0), "1,000");
    assert_eq!(thousands(1_234_567.0), "1,234,567");
}

#[test]
fn columns_are_padded_to_the_widest_cell() {
    let mut table = Table::new("title", &["", "count"]);
    table.row(vec!["reads".into(), "1,000".into()]);
    table.row(vec!["a".into(), "7".into()]);
    assert_eq!(
        table.render(),
        "\ntitle\n       count\n------------\nreads  1,000\na          7\n"
    );
}
