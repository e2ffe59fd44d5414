//! Search: turns a [`SearchQuery`] into PostgreSQL SQL over the index tables, with every value bound
//! as a parameter, and pages through the result with keyset cursors.
//!
//! Shape of the generated SQL (alias `r` is the candidate resource):
//!
//! ```text
//! SELECT pk, k0, k1 FROM (
//!     SELECT r.pk AS pk, <sort key 0> AS k0, <sort key 1> AS k1
//!     FROM resource r
//!     WHERE NOT r.deleted AND r.type IN (...) AND <compartment> AND (<or-group>) AND (<or-group>)
//! ) AS m WHERE <keyset predicate on (k0, k1, pk)> ORDER BY k0, k1, pk LIMIT count + 1
//! ```
//!
//! Each index condition is `r.pk IN (SELECT res FROM idx_<kind> WHERE pid = <id of (type, param)>
//! AND <test>)`, served by the `(pid, ...)` index of that table. The page's bodies are fetched
//! afterwards by pk, so the sort never carries JSON. The SQL mirrors the SQLite backend's clause for
//! clause, so both backends answer every query identically; text columns use `COLLATE "C"` (byte
//! order, as SQLite's BINARY).
//!
//! A search runs inside one `REPEATABLE READ` read-only transaction (the caller opens it), so the
//! page, the total and the included resources all come from one snapshot.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use deadpool_postgres::{GenericClient, Transaction};
use store::{
    Condition, Include, ParamKind, Prefix, SearchPage, SearchQuery, SortKey, SortParam, StoreError,
    StoredResource, StringMode, Timestamp, TokenSystem, TotalMode, UriMode, ValueTest,
};
use tokio_postgres::Row;

use crate::cursor::{self, Direction, Position, Scope};
use crate::error::{Fault, Result, invalid};
use crate::sql::{BoxedParam, KeyType, Param, Sql, Value};

/// The largest page a search or history call returns; larger counts are capped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Runs `query` inside the caller's transaction.
///
/// # Errors
/// `Invalid` for a cursor that this query did not issue; database errors as classified.
pub(crate) async fn search(
    transaction: &Transaction<'_>,
    query: &SearchQuery,
) -> Result<SearchPage> {
    let scope = scope_of(query);
    let columns = key_columns(query);
    let position = query
        .cursor
        .as_ref()
        .map(|cursor| cursor::decode(scope, cursor, query.sort.len()))
        .transpose()?;
    if let Some(position) = &position {
        let fits = position.keys.iter().zip(&columns).all(|(key, column)| {
            key.fits(column.key_type) && (column.nullable || *key != Value::Null)
        });
        if !fits {
            return Err(invalid("the page cursor was not issued for this query"));
        }
    }
    let total = match query.total {
        TotalMode::Accurate => Some(count_matches(transaction, query).await?),
        TotalMode::None => None,
    };
    let count = query.count.min(MAX_PAGE_SIZE) as usize;
    if count == 0 {
        return Ok(SearchPage {
            total,
            ..SearchPage::default()
        });
    }

    let mut page = match &position {
        Some(position) if position.direction == Direction::Before => {
            let (rows, more) =
                fetch_keys(transaction, query, &columns, Some(position), count).await?;
            if more {
                let next = rows.last().map(SortRow::after);
                let previous = rows.first().map(SortRow::before);
                Page {
                    rows,
                    next,
                    previous,
                }
            } else {
                // Paging back reached the start: serve the first page, so it is full and has no
                // previous link even if rows before the boundary were deleted meanwhile.
                first_page(transaction, query, &columns, count).await?
            }
        }
        Some(position) => {
            let (rows, more) =
                fetch_keys(transaction, query, &columns, Some(position), count).await?;
            let next = if more {
                rows.last().map(SortRow::after)
            } else {
                None
            };
            // The page after the boundary might be empty (its rows were deleted); the previous link
            // then covers everything up to and including the boundary row.
            let previous = Some(rows.first().map_or_else(
                || Position {
                    direction: Direction::Before,
                    keys: position.keys.clone(),
                    pk: position.pk.saturating_add(1),
                },
                SortRow::before,
            ));
            Page {
                rows,
                next,
                previous,
            }
        }
        None => first_page(transaction, query, &columns, count).await?,
    };

    let pks: Vec<i64> = page.rows.iter().map(|row| row.pk).collect();
    let matches = fetch_by_pk(transaction, &pks).await?;
    let included = includes(transaction, query, &matches).await?;
    Ok(SearchPage {
        matches: matches.into_iter().map(|(_, resource)| resource).collect(),
        included,
        total,
        next: page
            .next
            .take()
            .map(|position| cursor::encode(scope, &position)),
        previous: page
            .previous
            .take()
            .map(|position| cursor::encode(scope, &position)),
    })
}

/// The cursor scope of a search: everything that selects and orders rows, but not the page size
/// (a client may change `_count` while paging) nor includes or totals.
fn scope_of(query: &SearchQuery) -> Scope {
    Scope::of(&format!(
        "search\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        query.types, query.compartment, query.filters, query.sort
    ))
}

/// One page of sort rows with the positions of its neighbours.
struct Page {
    rows: Vec<SortRow>,
    next: Option<Position>,
    previous: Option<Position>,
}

async fn first_page(
    transaction: &Transaction<'_>,
    query: &SearchQuery,
    columns: &[KeyColumn],
    count: usize,
) -> Result<Page> {
    let (rows, more) = fetch_keys(transaction, query, columns, None, count).await?;
    let next = if more {
        rows.last().map(SortRow::after)
    } else {
        None
    };
    Ok(Page {
        rows,
        next,
        previous: None,
    })
}

/// A matching row's pk and sort key values: what a cursor needs.
struct SortRow {
    pk: i64,
    keys: Vec<Value>,
}

impl SortRow {
    fn after(&self) -> Position {
        Position {
            direction: Direction::After,
            keys: self.keys.clone(),
            pk: self.pk,
        }
    }

    fn before(&self) -> Position {
        Position {
            direction: Direction::Before,
            keys: self.keys.clone(),
            pk: self.pk,
        }
    }
}

/// A sort key column of the inner select.
struct KeyColumn {
    name: String,
    descending: bool,
    /// Whether the key can be missing (only parameter keys can).
    nullable: bool,
    key_type: KeyType,
}

fn key_columns(query: &SearchQuery) -> Vec<KeyColumn> {
    query
        .sort
        .iter()
        .enumerate()
        .map(|(index, key)| {
            let (nullable, key_type) = match &key.param {
                SortParam::Id => (false, KeyType::Text),
                SortParam::LastUpdated => (false, KeyType::Int),
                SortParam::Param { kind, .. } => (
                    true,
                    match kind {
                        ParamKind::Token
                        | ParamKind::String
                        | ParamKind::Reference
                        | ParamKind::Uri => KeyType::Text,
                        ParamKind::Date => KeyType::Int,
                        ParamKind::Quantity | ParamKind::Number => KeyType::Real,
                    },
                ),
            };
            KeyColumn {
                name: format!("k{index}"),
                descending: key.descending,
                nullable,
                key_type,
            }
        })
        .collect()
}

/// Fetches up to `count` sort rows on the page after (or before) `position`, in the query's order,
/// and whether more rows follow in that direction.
async fn fetch_keys(
    transaction: &Transaction<'_>,
    query: &SearchQuery,
    columns: &[KeyColumn],
    position: Option<&Position>,
    count: usize,
) -> Result<(Vec<SortRow>, bool)> {
    let backward = position.is_some_and(|position| position.direction == Direction::Before);
    let sql = page_sql(query, columns, position, count);
    let rows = transaction.query(&sql.text, &sql.refs()).await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        let pk: i64 = row.try_get(0)?;
        let mut keys = Vec::with_capacity(columns.len());
        for (index, column) in columns.iter().enumerate() {
            let at = index + 1;
            let key = match column.key_type {
                KeyType::Int => row.try_get::<_, Option<i64>>(at)?.map(Value::Int),
                KeyType::Real => row.try_get::<_, Option<f64>>(at)?.map(Value::Real),
                KeyType::Text => row.try_get::<_, Option<String>>(at)?.map(Value::Text),
            };
            keys.push(key.unwrap_or(Value::Null));
        }
        page.push(SortRow { pk, keys });
    }
    let more = page.len() > count;
    page.truncate(count);
    if backward {
        page.reverse();
    }
    Ok((page, more))
}

/// The SQL of one page of sort rows: pk and sort keys of up to `count + 1` matches after (or
/// before) `position`, in the order the page is read.
fn page_sql(
    query: &SearchQuery,
    columns: &[KeyColumn],
    position: Option<&Position>,
    count: usize,
) -> Sql {
    let backward = position.is_some_and(|position| position.direction == Direction::Before);
    let mut sql = Sql::default();
    sql.push("SELECT pk");
    for column in columns {
        let _ = write!(sql.text, ", {}", column.name);
    }
    sql.push(" FROM (SELECT r.pk AS pk");
    let shard = query
        .compartment
        .as_ref()
        .map(|patient| sql.bind_str(patient));
    for (key, column) in query.sort.iter().zip(columns) {
        sql.push(", ");
        sort_expression(&mut sql, key, shard);
        let _ = write!(sql.text, " AS {}", column.name);
    }
    sql.push(" FROM resource r WHERE ");
    Filter::new(&mut sql, shard).base(query);
    sql.push(") AS m");
    if let Some(position) = position {
        sql.push(" WHERE ");
        let predicate = keyset(&mut sql, columns, &position.keys, position.pk, !backward);
        sql.push(&predicate);
    }
    sql.push(" ORDER BY ");
    for column in columns {
        // Forward order puts missing values last; the backward scan is its exact mirror.
        let descending = column.descending != backward;
        if column.nullable {
            let _ = write!(
                sql.text,
                "{} IS NULL{}, ",
                column.name,
                if backward { " DESC" } else { "" }
            );
        }
        let _ = write!(
            sql.text,
            "{}{}, ",
            column.name,
            if descending { " DESC" } else { "" }
        );
    }
    sql.push(if backward { "pk DESC" } else { "pk" });
    let limit = sql.bind(i64::try_from(count + 1).unwrap_or(i64::MAX));
    let _ = write!(sql.text, " LIMIT {limit}");
    sql
}

/// Writes the SQL expression of one sort key on `r`. Its index rows are read under the
/// compartment's patient (`shard`, bound) in a compartment search, else under `r`'s home key.
fn sort_expression(sql: &mut Sql, key: &SortKey, shard: Option<Param>) {
    let (code, kind) = match &key.param {
        SortParam::Id => {
            sql.push("r.id");
            return;
        }
        SortParam::LastUpdated => {
            sql.push("r.last_updated");
            return;
        }
        SortParam::Param { code, kind } => (code, *kind),
    };
    let aggregate = if key.descending { "max" } else { "min" };
    let (table, column) = match kind {
        ParamKind::Token => ("idx_token", "code"),
        ParamKind::String => ("idx_string", "normalized"),
        ParamKind::Date if key.descending => ("idx_date", "high"),
        ParamKind::Date => ("idx_date", "low"),
        ParamKind::Reference => (
            "idx_reference",
            "coalesce(target_type || '/' || target_id, url) COLLATE \"C\"",
        ),
        ParamKind::Quantity => ("idx_quantity", "value"),
        ParamKind::Number => ("idx_number", "value"),
        ParamKind::Uri => ("idx_uri", "value"),
    };
    let param = sql.bind_str(code);
    let shard = shard.map_or_else(|| "r.shard_key".to_owned(), |shard| shard.to_string());
    let _ = write!(
        sql.text,
        "(SELECT {aggregate}({column}) FROM {table} WHERE res = r.pk AND shard_key = {shard} \
         AND pid IN (SELECT pid FROM search_param WHERE param = {param}))"
    );
}

/// The keyset predicate: rows strictly after (`after`) or strictly before the boundary
/// `(keys, pk)` in the query's forward order, where missing values sort last.
fn keyset(sql: &mut Sql, columns: &[KeyColumn], keys: &[Value], pk: i64, after: bool) -> String {
    let Some((column, rest_columns)) = columns.split_first() else {
        let pk = sql.bind(pk);
        return format!("pk {} {pk}", if after { ">" } else { "<" });
    };
    let (key, rest_keys) = keys.split_first().unwrap_or((&Value::Null, &[]));
    let rest = keyset(sql, rest_columns, rest_keys, pk, after);
    let name = &column.name;
    match key {
        // Missing values sort last: nothing is after one, every present value is before one.
        Value::Null if after => format!("({name} IS NULL AND {rest})"),
        Value::Null => format!("({name} IS NOT NULL OR ({name} IS NULL AND {rest}))"),
        value => {
            let bound = sql.bind_boxed(value.boxed());
            let operator = if after != column.descending { ">" } else { "<" };
            let strictly = if after && column.nullable {
                format!("({name} IS NULL OR {name} {operator} {bound})")
            } else {
                format!("{name} {operator} {bound}")
            };
            format!("({strictly} OR ({name} = {bound} AND {rest}))")
        }
    }
}

/// `SELECT count(*)` over every match.
async fn count_matches(transaction: &Transaction<'_>, query: &SearchQuery) -> Result<u64> {
    let mut sql = Sql::default();
    sql.push("SELECT count(*) FROM resource r WHERE ");
    let shard = query
        .compartment
        .as_ref()
        .map(|patient| sql.bind_str(patient));
    Filter::new(&mut sql, shard).base(query);
    let row = transaction.query_one(&sql.text, &sql.refs()).await?;
    column_u64(&row, 0)
}

/// Writes the WHERE clause of a query (and of nested chain and `_has` conditions).
struct Filter<'s> {
    sql: &'s mut Sql,
    /// Counter for unique table aliases of nested conditions.
    aliases: usize,
    /// The bound patient id of a compartment search. Every resource in a patient's compartment has
    /// a copy of each of its index rows under that patient's distribution key, so the conditions on
    /// the candidate `r` itself look at those copies only: exact, and on a sharded store the
    /// search then touches that patient's shard alone.
    shard: Option<Param>,
}

impl<'s> Filter<'s> {
    /// `shard`: the bound patient id of a compartment search.
    fn new(sql: &'s mut Sql, shard: Option<Param>) -> Self {
        Filter {
            sql,
            aliases: 0,
            shard,
        }
    }

    /// ` AND <column> = <patient>` when `alias` is the candidate of a compartment search.
    fn shard_restriction(&mut self, column: &str, alias: &str) {
        if alias == "r"
            && let Some(shard) = self.shard
        {
            let _ = write!(self.sql.text, " AND {column} = {shard}");
        }
    }

    /// Live resources of the query's types and compartment passing every filter group.
    fn base(&mut self, query: &SearchQuery) {
        self.sql.push("NOT r.deleted");
        self.type_restriction("r.type", &query.types);
        if let Some(patient) = self.shard {
            let _ = write!(
                self.sql.text,
                " AND r.pk IN (SELECT res FROM compartment WHERE patient_id = {patient})"
            );
        }
        for group in &query.filters {
            self.sql.push(" AND ");
            self.group(group, "r", &query.types);
        }
    }

    /// ` AND <column> IN (types)`; nothing for an empty list (any type).
    fn type_restriction(&mut self, column: &str, types: &[String]) {
        match types {
            [] => {}
            [only] => {
                let only = self.sql.bind_str(only);
                let _ = write!(self.sql.text, " AND {column} = {only}");
            }
            many => {
                let list = self.sql.bind(many.to_vec());
                let _ = write!(self.sql.text, " AND {column} = ANY({list}::text[])");
            }
        }
    }

    /// ` AND <column>` (an index table's `pid`) names `param` of one of `types` (of any type when
    /// the list is empty). A pair that was never indexed has no id, so the test matches nothing.
    fn param_restriction(&mut self, column: &str, types: &[String], param: &str) {
        let param = self.sql.bind_str(param);
        match types {
            [only] => {
                let only = self.sql.bind_str(only);
                let _ = write!(
                    self.sql.text,
                    " AND {column} = (SELECT pid FROM search_param \
                     WHERE type = {only} AND param = {param})"
                );
            }
            _ => {
                let _ = write!(
                    self.sql.text,
                    " AND {column} IN (SELECT pid FROM search_param WHERE param = {param}"
                );
                self.type_restriction("type", types);
                self.sql.push(")");
            }
        }
    }

    /// An OR of alternatives. An empty group has no alternative that holds, so it matches nothing.
    ///
    /// Alternatives that are all index matches (`identifier=a,b`) are one `IN` over the union of
    /// their index rows: PostgreSQL turns that into a semi-join on the indexes, where an `OR` of
    /// `IN`s is a filter on every resource of the type.
    fn group(&mut self, alternatives: &[Condition], alias: &str, types: &[String]) {
        if alternatives.is_empty() {
            self.sql.push("FALSE");
            return;
        }
        if alternatives.len() > 1
            && alternatives
                .iter()
                .all(|condition| matches!(condition, Condition::Match { .. }))
        {
            let _ = write!(self.sql.text, "{alias}.pk IN (");
            for (index, condition) in alternatives.iter().enumerate() {
                let Condition::Match { param, test } = condition else {
                    continue;
                };
                if index > 0 {
                    self.sql.push(" UNION ALL ");
                }
                self.index_rows(param, test, alias, types);
            }
            self.sql.push(")");
            return;
        }
        self.sql.push("(");
        for (index, condition) in alternatives.iter().enumerate() {
            if index > 0 {
                self.sql.push(" OR ");
            }
            self.condition(condition, alias, types);
        }
        self.sql.push(")");
    }

    /// `SELECT res FROM <index> WHERE ...`: the index rows of `param` passing `test`.
    fn index_rows(&mut self, param: &str, test: &ValueTest, alias: &str, types: &[String]) {
        self.sql.push("SELECT res FROM ");
        self.sql.push(table_of(test.kind()));
        self.sql.push(" WHERE TRUE");
        self.shard_restriction("shard_key", alias);
        self.param_restriction("pid", types, param);
        self.test(test);
    }

    /// A boolean expression true when the resource `alias` (of one of `types`) passes `condition`.
    fn condition(&mut self, condition: &Condition, alias: &str, types: &[String]) {
        match condition {
            Condition::Id(id) => {
                let id = self.sql.bind_str(id);
                let _ = write!(self.sql.text, "{alias}.id = {id}");
            }
            Condition::LastUpdated { prefix, range } => {
                let column = format!("{alias}.last_updated");
                self.range(
                    *prefix,
                    &column,
                    &column,
                    Box::new(range.low),
                    Box::new(range.high),
                );
            }
            Condition::Match { param, test } => {
                let _ = write!(self.sql.text, "{alias}.pk IN (");
                self.index_rows(param, test, alias, types);
                self.sql.push(")");
            }
            Condition::Missing {
                param,
                kind,
                missing,
            } => {
                let negation = if *missing { "NOT " } else { "" };
                let _ = write!(
                    self.sql.text,
                    "{alias}.pk {negation}IN (SELECT res FROM {} WHERE TRUE",
                    table_of(*kind)
                );
                self.shard_restriction("shard_key", alias);
                self.param_restriction("pid", types, param);
                self.sql.push(")");
            }
            Condition::Not(inner) => {
                self.sql.push("NOT (");
                self.condition(inner, alias, types);
                self.sql.push(")");
            }
            Condition::Chain {
                reference,
                target_types,
                inner,
            } => {
                self.aliases += 1;
                let link = format!("c{}", self.aliases);
                let target = format!("t{}", self.aliases);
                let _ = write!(
                    self.sql.text,
                    "{alias}.pk IN (SELECT {link}.res FROM idx_reference {link} \
                     JOIN resource {target} ON {target}.type = {link}.target_type \
                     AND {target}.id = {link}.target_id WHERE NOT {target}.deleted"
                );
                self.shard_restriction(&format!("{link}.shard_key"), alias);
                self.param_restriction(&format!("{link}.pid"), types, reference);
                self.type_restriction(&format!("{link}.target_type"), target_types);
                self.sql.push(" AND ");
                self.condition(inner, &target, target_types);
                self.sql.push(")");
            }
            Condition::Has {
                source_type,
                reference_param,
                inner,
            } => {
                self.aliases += 1;
                let link = format!("h{}", self.aliases);
                let source = format!("s{}", self.aliases);
                let target = format!("t{}", self.aliases);
                let _ = write!(
                    self.sql.text,
                    "{alias}.pk IN (SELECT {target}.pk FROM idx_reference {link} \
                     JOIN resource {source} ON {source}.pk = {link}.res \
                     JOIN resource {target} ON {target}.type = {link}.target_type \
                     AND {target}.id = {link}.target_id WHERE TRUE"
                );
                self.param_restriction(
                    &format!("{link}.pid"),
                    std::slice::from_ref(source_type),
                    reference_param,
                );
                self.type_restriction(&format!("{link}.target_type"), types);
                self.sql.push(" AND ");
                self.condition(inner, &source, std::slice::from_ref(source_type));
                self.sql.push(")");
            }
        }
    }

    /// ` AND <test>` on the columns of the test's index table.
    fn test(&mut self, test: &ValueTest) {
        match test {
            ValueTest::Token { system, code } => {
                if let Some(code) = code {
                    let code = self.sql.bind_str(code);
                    let _ = write!(self.sql.text, " AND code = {code}");
                }
                match system {
                    TokenSystem::Any => {}
                    TokenSystem::None => self.sql.push(" AND system IS NULL"),
                    TokenSystem::Is(system) => {
                        let system = self.sql.bind_str(system);
                        let _ = write!(self.sql.text, " AND system = {system}");
                    }
                }
            }
            ValueTest::TokenText(text) => self.starts_with("text", text),
            ValueTest::String { value, mode } => match mode {
                StringMode::StartsWith => self.starts_with("normalized", value),
                StringMode::Exact => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND exact = {value}");
                }
                StringMode::Contains => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND strpos(normalized, {value}) > 0");
                }
            },
            ValueTest::Date { prefix, range } => {
                self.sql.push(" AND ");
                self.range(
                    *prefix,
                    "low",
                    "high",
                    Box::new(range.low),
                    Box::new(range.high),
                );
            }
            ValueTest::Number { prefix, low, high } => {
                self.sql.push(" AND ");
                self.range(*prefix, "value", "value", Box::new(*low), Box::new(*high));
            }
            ValueTest::Quantity {
                prefix,
                low,
                high,
                system,
                code,
            } => {
                self.sql.push(" AND ");
                self.range(*prefix, "value", "value", Box::new(*low), Box::new(*high));
                match (system, code) {
                    (Some(system), code) => {
                        let system = self.sql.bind_str(system);
                        let _ = write!(self.sql.text, " AND system = {system}");
                        if let Some(code) = code {
                            let code = self.sql.bind_str(code);
                            let _ = write!(self.sql.text, " AND code = {code}");
                        }
                    }
                    (None, Some(code)) => {
                        let code = self.sql.bind_str(code);
                        let _ = write!(self.sql.text, " AND (code = {code} OR unit = {code})");
                    }
                    (None, None) => {}
                }
            }
            ValueTest::Reference {
                target_type,
                id,
                url,
            } => {
                if let Some(url) = url {
                    let url = self.sql.bind_str(url);
                    let _ = write!(self.sql.text, " AND url = {url}");
                }
                if let Some(id) = id {
                    let id = self.sql.bind_str(id);
                    let _ = write!(self.sql.text, " AND target_id = {id}");
                }
                if let Some(target_type) = target_type {
                    let target_type = self.sql.bind_str(target_type);
                    let _ = write!(self.sql.text, " AND target_type = {target_type}");
                }
            }
            ValueTest::Uri { value, mode } => match mode {
                UriMode::Exact => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND value = {value}");
                }
                UriMode::Below => self.starts_with("value", value),
                UriMode::Above => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(
                        self.sql.text,
                        " AND value <= {value} AND starts_with({value}, value)"
                    );
                }
            },
        }
    }

    /// ` AND <column> starts with <prefix>`, as a range so that the index serves it: every string
    /// starting with `prefix` lies in `[prefix, prefix + U+10FFFF)` in byte order (the columns are
    /// `COLLATE "C"` and the database is UTF-8).
    fn starts_with(&mut self, column: &str, prefix: &str) {
        if prefix.is_empty() {
            let _ = write!(self.sql.text, " AND {column} IS NOT NULL");
            return;
        }
        let low = self.sql.bind_str(prefix);
        let high = self.sql.bind(format!("{prefix}\u{10FFFF}"));
        let _ = write!(
            self.sql.text,
            " AND {column} >= {low} AND {column} < {high}"
        );
    }

    /// A prefix comparison of the indexed range `[low_column, high_column]` with the search range
    /// `[low, high]`, per the table in `store::query`.
    fn range(
        &mut self,
        prefix: Prefix,
        low_column: &str,
        high_column: &str,
        low: BoxedParam,
        high: BoxedParam,
    ) {
        let (rl, rh) = (low_column, high_column);
        let text = match prefix {
            Prefix::Eq | Prefix::Ne => {
                let (sl, sh) = (self.sql.bind_boxed(low), self.sql.bind_boxed(high));
                let negation = if prefix == Prefix::Ne { "NOT " } else { "" };
                format!("{negation}({rl} >= {sl} AND {rh} <= {sh})")
            }
            Prefix::Gt => format!("{rh} > {}", self.sql.bind_boxed(high)),
            Prefix::Lt => format!("{rl} < {}", self.sql.bind_boxed(low)),
            Prefix::Ge => format!("{rh} >= {}", self.sql.bind_boxed(low)),
            Prefix::Le => format!("{rl} <= {}", self.sql.bind_boxed(high)),
            Prefix::Sa => format!("{rl} > {}", self.sql.bind_boxed(high)),
            Prefix::Eb => format!("{rh} < {}", self.sql.bind_boxed(low)),
            Prefix::Ap => {
                let (sl, sh) = (self.sql.bind_boxed(low), self.sql.bind_boxed(high));
                format!("({rl} <= {sh} AND {rh} >= {sl})")
            }
        };
        self.sql.push(&text);
    }
}

/// The index table of a value kind.
fn table_of(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "idx_token",
        ParamKind::String => "idx_string",
        ParamKind::Date => "idx_date",
        ParamKind::Reference => "idx_reference",
        ParamKind::Quantity => "idx_quantity",
        ParamKind::Number => "idx_number",
        ParamKind::Uri => "idx_uri",
    }
}

/// The directory columns selected by [`directory_row`] for a resource alias `r`.
pub(crate) const RESOURCE_COLUMNS: &str =
    "r.pk, r.type, r.id, r.version, r.last_updated, r.shard_key";

/// A live resource's directory row (selected with [`RESOURCE_COLUMNS`]): everything but its body.
pub(crate) struct DirectoryRow {
    pub(crate) pk: i64,
    pub(crate) shard_key: String,
    /// With an empty body until [`with_bodies`] fills it.
    pub(crate) resource: StoredResource,
}

/// Reads a row selected with [`RESOURCE_COLUMNS`].
pub(crate) fn directory_row(row: &Row) -> Result<DirectoryRow> {
    Ok(DirectoryRow {
        pk: row.try_get(0)?,
        shard_key: row.try_get(5)?,
        resource: StoredResource {
            resource_type: row.try_get(1)?,
            id: row.try_get(2)?,
            version: column_u64(row, 3)?,
            last_updated: Timestamp(row.try_get(4)?),
            deleted: false,
            json: String::new(),
        },
    })
}

/// Fetches the current bodies of `rows` and returns them as `(pk, resource)`, in order.
///
/// The bodies are looked up by the rows' home keys, bound as a parameter, so that on a sharded
/// store only the shards holding them are planned and opened (a key computed per row inside the
/// query would leave every shard in the plan). Every backend connection runs with
/// `plan_cache_mode = force_custom_plan` on a sharded store, so the keys prune at plan time.
pub(crate) async fn with_bodies<C: GenericClient>(
    client: &C,
    rows: Vec<DirectoryRow>,
) -> Result<Vec<(i64, StoredResource)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<&str> = rows.iter().map(|row| row.shard_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let pks: Vec<i64> = rows.iter().map(|row| row.pk).collect();
    let mut versions: Vec<i64> = rows
        .iter()
        .map(|row| i64::try_from(row.resource.version).unwrap_or(i64::MAX))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let statement = client
        .prepare_cached(
            "SELECT res, version, json::text FROM resource_version \
             WHERE shard_key = ANY($1::text[]) AND res = ANY($2::int8[]) AND version = ANY($3::int8[])",
        )
        .await?;
    let found = client.query(&statement, &[&keys, &pks, &versions]).await?;
    let mut bodies: HashMap<(i64, i64), String> = HashMap::with_capacity(found.len());
    for row in &found {
        if let Some(json) = row.try_get::<_, Option<String>>(2)? {
            bodies.insert((row.try_get(0)?, row.try_get(1)?), json);
        }
    }
    rows.into_iter()
        .map(|mut row| {
            let version = i64::try_from(row.resource.version).unwrap_or(i64::MAX);
            row.resource.json = bodies.remove(&(row.pk, version)).ok_or_else(|| {
                Fault(StoreError::internal(
                    "a live resource has no body for its current version",
                ))
            })?;
            Ok((row.pk, row.resource))
        })
        .collect()
}

/// Reads a non-negative bigint column (versions, counts) as `u64`.
pub(crate) fn column_u64(row: &Row, index: usize) -> Result<u64> {
    let value: i64 = row.try_get(index)?;
    u64::try_from(value).map_err(|error| Fault(StoreError::internal(error)))
}

/// The resources with these pks, in the order of `pks`.
async fn fetch_by_pk(
    transaction: &Transaction<'_>,
    pks: &[i64],
) -> Result<Vec<(i64, StoredResource)>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    let statement = transaction
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resource r WHERE r.pk = ANY($1)"
        ))
        .await?;
    let rows = transaction.query(&statement, &[&pks]).await?;
    let rows = rows.iter().map(directory_row).collect::<Result<Vec<_>>>()?;
    let mut by_pk: HashMap<i64, StoredResource> =
        with_bodies(transaction, rows).await?.into_iter().collect();
    Ok(pks
        .iter()
        .filter_map(|pk| by_pk.remove(pk).map(|resource| (*pk, resource)))
        .collect())
}

/// `_include` and `_revinclude` of the matches, then one more level for `:iterate` ones. Each
/// resource comes once, and never one that is already a match.
async fn includes(
    transaction: &Transaction<'_>,
    query: &SearchQuery,
    matches: &[(i64, StoredResource)],
) -> Result<Vec<StoredResource>> {
    if matches.is_empty() || (query.includes.is_empty() && query.revincludes.is_empty()) {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().map(|(pk, _)| *pk).collect();
    let mut included: Vec<(i64, StoredResource)> = Vec::new();
    let sources: Vec<i64> = matches.iter().map(|(pk, _)| *pk).collect();
    include_level(
        transaction,
        query,
        &sources,
        false,
        &mut seen,
        &mut included,
    )
    .await?;
    let first_level: Vec<i64> = included.iter().map(|(pk, _)| *pk).collect();
    if !first_level.is_empty() {
        include_level(
            transaction,
            query,
            &first_level,
            true,
            &mut seen,
            &mut included,
        )
        .await?;
    }
    Ok(included.into_iter().map(|(_, resource)| resource).collect())
}

/// Applies the includes (only `:iterate` ones when `iterating`) to the resources `from`.
async fn include_level(
    transaction: &Transaction<'_>,
    query: &SearchQuery,
    from: &[i64],
    iterating: bool,
    seen: &mut HashSet<i64>,
    included: &mut Vec<(i64, StoredResource)>,
) -> Result<()> {
    let applies = |include: &&Include| !iterating || include.iterate;
    let forward = transaction
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM idx_reference x \
             JOIN resource r ON r.type = x.target_type AND r.id = x.target_id \
             WHERE x.res = ANY($1) AND x.shard_key = ANY($5::text[]) \
             AND x.pid = (SELECT pid FROM search_param WHERE type = $2 AND param = $3) \
             AND ($4::text IS NULL OR x.target_type = $4::text) AND NOT r.deleted ORDER BY r.pk"
        ))
        .await?;
    let reverse = transaction
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resource m \
             JOIN idx_reference x \
             ON x.pid = (SELECT pid FROM search_param WHERE type = $2 AND param = $3) \
             AND x.target_id = m.id AND x.target_type = m.type \
             JOIN resource r ON r.pk = x.res \
             WHERE m.pk = ANY($1) AND ($4::text IS NULL OR m.type = $4::text) \
             AND cardinality($5::text[]) >= 0 ORDER BY r.pk"
        ))
        .await?;
    let passes = query
        .includes
        .iter()
        .filter(applies)
        .map(|include| (&forward, include))
        .chain(
            query
                .revincludes
                .iter()
                .filter(applies)
                .map(|include| (&reverse, include)),
        );
    // The sources' home keys, bound so that a forward include reads their index rows on their
    // shards only.
    let keys_statement = transaction
        .prepare_cached(
            "SELECT coalesce(array_agg(DISTINCT shard_key), '{}') FROM resource WHERE pk = ANY($1)",
        )
        .await?;
    let keys: Vec<String> = transaction
        .query_one(&keys_statement, &[&from])
        .await?
        .try_get(0)?;
    let mut found = Vec::new();
    for (statement, include) in passes {
        let rows = transaction
            .query(
                statement,
                &[
                    &from,
                    &include.source_type,
                    &include.param,
                    &include.target_type,
                    &keys,
                ],
            )
            .await?;
        for row in &rows {
            let row = directory_row(row)?;
            if seen.insert(row.pk) {
                found.push(row);
            }
        }
    }
    included.extend(with_bodies(transaction, found).await?);
    Ok(())
}
