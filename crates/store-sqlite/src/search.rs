//! Search: turns a [`SearchQuery`] into SQL over the index tables, with every value bound as a
//! parameter, and pages through the result with keyset cursors.
//!
//! Shape of the generated SQL (alias `r` is the candidate resource):
//!
//! ```text
//! SELECT pk, k0, k1 FROM (
//!     SELECT r.pk AS pk, <sort key 0> AS k0, <sort key 1> AS k1
//!     FROM resource r
//!     WHERE r.deleted = 0 AND r.type IN (...) AND <compartment> AND (<or-group>) AND (<or-group>)
//! ) WHERE <keyset predicate on (k0, k1, pk)> ORDER BY k0, k1, pk LIMIT count + 1
//! ```
//!
//! One condition *drives* (see [`Driver`], chosen per query by bounded index probes): without
//! sort keys its index rows are joined in front of `resource` (`FROM idx_<kind> d CROSS JOIN
//! resource r`), whose bound equality prefix yields them in pk order, so a page stops after
//! `count + 1` rows; with sort keys it is the set `r.pk IN (SELECT res FROM idx_<kind> WHERE pid =
//! <id of (type, param)> AND <test>)`. Every other condition is a correlated probe of the
//! candidate's own index rows, `EXISTS (SELECT 1 FROM idx_<kind> WHERE res = r.pk AND +pid = ...)`,
//! read by primary key. A query with no condition that can drive (only chains, `OR` groups,
//! `_lastUpdated`) keeps every condition as an `IN` set and lets SQLite plan it. The page's bodies
//! are fetched afterwards by pk, so the sorter never carries JSON.
//!
//! A search runs inside one read transaction (the caller opens it), so the page, the total and the
//! included resources all come from one snapshot.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};
use store::{
    Condition, Include, ParamKind, Prefix, SearchPage, SearchQuery, SortKey, SortParam,
    StoredResource, StringMode, Timestamp, TokenSystem, TotalMode, UriMode, ValueTest,
};

use crate::cursor::{self, Direction, Position, Scope};
use crate::error::Result;

/// The largest page a search or history call returns; larger counts are capped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Runs `query` on `connection` (inside the caller's transaction).
///
/// # Errors
/// `Invalid` for a cursor that this query did not issue; database errors as classified.
pub(crate) fn search(connection: &Connection, query: &SearchQuery) -> Result<SearchPage> {
    let scope = scope_of(query);
    let position = query
        .cursor
        .as_ref()
        .map(|cursor| cursor::decode(scope, cursor, query.sort.len()))
        .transpose()?;
    let driver = choose_driver(connection, query)?;
    let total = match query.total {
        TotalMode::Accurate => Some(count_matches(connection, query, driver)?),
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
            let (rows, more) = fetch_keys(connection, query, driver, Some(position), count)?;
            if more {
                let next = rows.last().map(|row| row.after());
                let previous = rows.first().map(|row| row.before());
                Page {
                    rows,
                    next,
                    previous,
                }
            } else {
                // Paging back reached the start: serve the first page, so it is full and has no
                // previous link even if rows before the boundary were deleted meanwhile.
                first_page(connection, query, driver, count)?
            }
        }
        Some(position) => {
            let (rows, more) = fetch_keys(connection, query, driver, Some(position), count)?;
            let next = if more {
                rows.last().map(|row| row.after())
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
        None => first_page(connection, query, driver, count)?,
    };

    let pks: Vec<i64> = page.rows.iter().map(|row| row.pk).collect();
    let matches = fetch_by_pk(connection, &pks)?;
    let included = includes(connection, query, &matches)?;
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

/// Whether any resource matches `query` (an existence query: see `SearchQuery::to_existence`):
/// the driver's probe and one page of at most one sort row, each a single statement (no read
/// transaction, no bodies, no cursor).
///
/// # Errors
/// Database errors as classified.
pub(crate) fn exists(connection: &Connection, query: &SearchQuery) -> Result<bool> {
    let driver = choose_driver(connection, query)?;
    let (rows, _) = fetch_keys(connection, query, driver, None, 1)?;
    Ok(!rows.is_empty())
}

/// [`exists`] if its driver's probe found it narrow (fewer than [`SELECTIVE`] index rows, so the
/// answer costs a few index reads whatever the data); `None` without reading further otherwise.
/// What the store runs on the calling thread (`SqliteStore::exists`).
///
/// # Errors
/// Database errors as classified.
pub(crate) fn exists_if_narrow(
    connection: &Connection,
    query: &SearchQuery,
) -> Result<Option<bool>> {
    let (driver, rows) = choose_driver_counted(connection, query)?;
    if !driver.indexed(query) || rows.is_none_or(|rows| rows >= SELECTIVE) {
        return Ok(None);
    }
    let (rows, _) = fetch_keys(connection, query, driver, None, 1)?;
    Ok(Some(!rows.is_empty()))
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

fn first_page(
    connection: &Connection,
    query: &SearchQuery,
    driver: Driver,
    count: usize,
) -> Result<Page> {
    let (rows, more) = fetch_keys(connection, query, driver, None, count)?;
    let next = if more {
        rows.last().map(|row| row.after())
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

/// SQL text with numbered parameters bound alongside.
#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Value>,
}

/// A bound parameter; displays as its placeholder `?N`.
#[derive(Clone, Copy)]
struct Param(usize);

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "?{}", self.0)
    }
}

impl Sql {
    fn bind(&mut self, value: impl Into<Value>) -> Param {
        self.params.push(value.into());
        Param(self.params.len())
    }

    fn bind_str(&mut self, value: &str) -> Param {
        self.bind(value.to_owned())
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// Fetches up to `count` sort rows on the page after (or before) `position`, in the query's order,
/// and whether more rows follow in that direction.
fn fetch_keys(
    connection: &Connection,
    query: &SearchQuery,
    driver: Driver,
    position: Option<&Position>,
    count: usize,
) -> Result<(Vec<SortRow>, bool)> {
    let backward = position.is_some_and(|position| position.direction == Direction::Before);
    let key_count = query.sort.len();
    // A joined driver yields a resource once per matching index row; the copies are adjacent (same
    // keys), so they are skipped here, and a page that lost rows to them is read again, longer.
    let mut limit = count + 1;
    let mut page = Vec::with_capacity(limit);
    loop {
        let sql = page_sql(query, driver, position, limit);
        let mut statement = connection.prepare_cached(&sql.text)?;
        let mut rows = statement.query(params_from_iter(sql.params.iter()))?;
        page.clear();
        let mut read = 0;
        while let Some(row) = rows.next()? {
            read += 1;
            let pk = row.get(0)?;
            if page.last().is_some_and(|last: &SortRow| last.pk == pk) {
                continue;
            }
            let keys = (1..=key_count)
                .map(|index| row.get::<_, Value>(index))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            page.push(SortRow { pk, keys });
        }
        if read < limit || page.len() > count {
            break;
        }
        limit = limit.saturating_mul(2);
    }
    let more = page.len() > count;
    page.truncate(count);
    if backward {
        page.reverse();
    }
    Ok((page, more))
}

/// The SQL of one page of sort rows: pk and sort keys of up to `limit` rows after (or before)
/// `position`, in the order the page is read. With a joined driver a resource may come more than
/// once (once per matching index row), in adjacent rows.
fn page_sql(query: &SearchQuery, driver: Driver, position: Option<&Position>, limit: usize) -> Sql {
    let backward = position.is_some_and(|position| position.direction == Direction::Before);
    let mut sql = Sql::default();
    sql.push("SELECT pk");
    for index in 0..query.sort.len() {
        let _ = write!(sql.text, ", k{index}");
    }
    // Without sort keys the page is in pk order, which an index driver joined in front of
    // `resource` yields as it reads (its equality prefix is bound): the page stops after `limit`
    // rows instead of collecting every match first.
    let joined = query.sort.is_empty() && driver.joinable(query);
    sql.push(if joined {
        " FROM (SELECT d.res AS pk"
    } else {
        " FROM (SELECT r.pk AS pk"
    });
    let mut columns = Vec::with_capacity(query.sort.len());
    for (index, key) in query.sort.iter().enumerate() {
        sql.push(", ");
        let nullable = sort_expression(&mut sql, key);
        let _ = write!(sql.text, " AS k{index}");
        columns.push(KeyColumn {
            name: format!("k{index}"),
            descending: key.descending,
            nullable,
        });
    }
    if joined {
        sql.push(" FROM ");
        Filter::new(&mut sql).joined(query, driver);
    } else {
        sql.push(" FROM resource r WHERE ");
        Filter::new(&mut sql).base(query, driver);
    }
    sql.push(")");
    if let Some(position) = position {
        sql.push(" WHERE ");
        let predicate = keyset(&mut sql, &columns, &position.keys, position.pk, !backward);
        sql.push(&predicate);
    }
    sql.push(" ORDER BY ");
    for column in &columns {
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
    let limit = sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let _ = write!(sql.text, " LIMIT {limit}");
    sql
}

/// A sort key column of the inner select.
struct KeyColumn {
    name: String,
    descending: bool,
    /// Whether the key can be missing (only parameter keys can).
    nullable: bool,
}

/// Writes the SQL expression of one sort key on `r`; returns whether it can be NULL.
fn sort_expression(sql: &mut Sql, key: &SortKey) -> bool {
    let (code, kind) = match &key.param {
        SortParam::Id => {
            sql.push("r.id");
            return false;
        }
        SortParam::LastUpdated => {
            sql.push("r.last_updated");
            return false;
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
            "coalesce(target_type || '/' || target_id, url)",
        ),
        ParamKind::Quantity => ("idx_quantity", "value"),
        ParamKind::Number => ("idx_number", "value"),
        ParamKind::Uri => ("idx_uri", "value"),
    };
    let param = sql.bind_str(code);
    let _ = write!(
        sql.text,
        "(SELECT {aggregate}({column}) FROM {table} WHERE res = r.pk \
         AND pid IN (SELECT pid FROM search_param WHERE param = {param}))"
    );
    true
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
            let bound = sql.bind(value.clone());
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
fn count_matches(connection: &Connection, query: &SearchQuery, driver: Driver) -> Result<u64> {
    let mut sql = Sql::default();
    sql.push("SELECT count(*) FROM resource r WHERE ");
    Filter::new(&mut sql).base(query, driver);
    let mut statement = connection.prepare_cached(&sql.text)?;
    let count = statement.query_row(params_from_iter(sql.params.iter()), |row| {
        column_u64(row, 0)
    })?;
    Ok(count)
}

/// How a search reaches its candidate rows.
///
/// SQLite evaluates `r.pk IN (SELECT res FROM idx_... WHERE ...)` by collecting the whole subquery
/// first, so a query made only of such sets pays for its least selective condition (every
/// laboratory Observation, to find one patient's). Instead one condition *drives*: its index
/// produces the candidates, and every other condition is a correlated probe of the candidate's own
/// index rows (`EXISTS (SELECT 1 FROM idx_... WHERE res = r.pk AND ...)`, a few rows of the
/// `(res, ord)` primary key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// No condition can drive: every condition is a set, and SQLite plans the query.
    Sets,
    /// The compartment's membership rows drive.
    Compartment,
    /// This filter group drives: its only alternative, an index `Match` or `_id` (which
    /// `resource`'s own `(type, id)` index serves), or its alternatives, each an index `Match`
    /// that can drive (`identifier=a,b`: the union of their index rows).
    Group(usize),
}

impl Driver {
    /// Whether the driver reads index tables (the compartment's or search indexes).
    fn indexed(self, query: &SearchQuery) -> bool {
        match self {
            Driver::Sets => false,
            Driver::Compartment => query.compartment.is_some(),
            Driver::Group(index) => match query.filters.get(index).map(Vec::as_slice) {
                Some([Condition::Match { .. }]) => true,
                Some(group) => alternatives_rank(group).is_some(),
                None => false,
            },
        }
    }

    /// Whether the driver is one index whose rows can be joined in front of `resource`.
    fn joinable(self, query: &SearchQuery) -> bool {
        match self {
            Driver::Group(index) => matches!(
                query.filters.get(index).map(Vec::as_slice),
                Some([Condition::Match { .. }])
            ),
            driver => driver.indexed(query),
        }
    }
}

/// The rank of a group of two or more alternatives that can drive together (each an index match
/// that could drive on its own): that of its least selective alternative.
fn alternatives_rank(group: &[Condition]) -> Option<u8> {
    if group.len() < 2 {
        return None;
    }
    group
        .iter()
        .try_fold(0, |rank, alternative| match alternative {
            Condition::Match { test, .. } => driver_rank(test).map(|own| rank.max(own)),
            _ => None,
        })
}

/// Rows a candidate driver's probe counts up to; a driver with fewer is chosen at once.
const PROBE_LIMIT: i64 = 1000;
const SELECTIVE: u64 = 100;

/// Picks the condition that drives `query`: `_id` if given; otherwise, among the compartment and
/// the single-alternative index matches, the one with the fewest index rows, counted by a bounded
/// probe (candidates are probed in order of their likely selectivity, and the first one below
/// [`SELECTIVE`] rows wins without probing the others).
fn choose_driver(connection: &Connection, query: &SearchQuery) -> Result<Driver> {
    Ok(choose_driver_counted(connection, query)?.0)
}

/// [`choose_driver`], with the driver's index rows as its probe counted them (up to
/// [`PROBE_LIMIT`]); `None` when the driver was chosen without a probe.
fn choose_driver_counted(
    connection: &Connection,
    query: &SearchQuery,
) -> Result<(Driver, Option<u64>)> {
    let single = |group: &Vec<Condition>| match group.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    };
    if let Some(index) = query
        .filters
        .iter()
        .position(|group| matches!(single(group), Some(Condition::Id(_))))
    {
        return Ok((Driver::Group(index), None));
    }
    let mut candidates = Vec::new();
    if query.compartment.is_some() {
        candidates.push((0, Driver::Compartment));
    }
    for (index, group) in query.filters.iter().enumerate() {
        let rank = match group.as_slice() {
            [Condition::Match { test, .. }] => driver_rank(test),
            alternatives => alternatives_rank(alternatives),
        };
        if let Some(rank) = rank {
            candidates.push((rank, Driver::Group(index)));
        }
    }
    if candidates.len() < 2 {
        let driver = candidates
            .first()
            .map_or(Driver::Sets, |(_, driver)| *driver);
        return Ok((driver, None));
    }
    candidates.sort_by_key(|(rank, _)| *rank);
    let mut best: Option<(u64, Driver)> = None;
    for (_, driver) in candidates {
        let mut sql = Sql::default();
        sql.push("SELECT count(*) FROM (");
        Filter::new(&mut sql).driver_set(query, driver);
        let limit = sql.bind(PROBE_LIMIT);
        let _ = write!(sql.text, " LIMIT {limit})");
        let mut statement = connection.prepare_cached(&sql.text)?;
        let rows = statement.query_row(params_from_iter(sql.params.iter()), |row| {
            column_u64(row, 0)
        })?;
        if rows < SELECTIVE {
            return Ok((driver, Some(rows)));
        }
        if best.is_none_or(|(fewest, _)| rows < fewest) {
            best = Some((rows, driver));
        }
    }
    Ok(best.map_or((Driver::Sets, None), |(rows, driver)| (driver, Some(rows))))
}

/// How likely an index match is to be selective (lower first); `None` for tests that its index
/// cannot narrow (they never drive).
fn driver_rank(test: &ValueTest) -> Option<u8> {
    match test {
        ValueTest::Reference { id, url, .. } if id.is_some() || url.is_some() => Some(1),
        ValueTest::Token {
            system: TokenSystem::Is(_),
            code: Some(_),
        } => Some(2),
        ValueTest::Token { code: Some(_), .. }
        | ValueTest::String {
            mode: StringMode::Exact | StringMode::StartsWith,
            ..
        }
        | ValueTest::Uri {
            mode: UriMode::Exact | UriMode::Below,
            ..
        } => Some(3),
        ValueTest::Date { prefix, .. }
        | ValueTest::Number { prefix, .. }
        | ValueTest::Quantity { prefix, .. }
            if *prefix != Prefix::Ne =>
        {
            Some(4)
        }
        ValueTest::TokenText(_) => Some(5),
        _ => None,
    }
}

/// Writes the WHERE clause of a query (and of nested chain and `_has` conditions).
struct Filter<'s> {
    sql: &'s mut Sql,
    /// Counter for unique table aliases of nested conditions.
    aliases: usize,
    /// Index conditions are correlated probes of the candidate's rows (a driver produces the
    /// candidates) rather than sets.
    probe: bool,
}

impl<'s> Filter<'s> {
    fn new(sql: &'s mut Sql) -> Self {
        Filter {
            sql,
            aliases: 0,
            probe: false,
        }
    }

    /// Live resources of the query's types and compartment passing every filter group, as a WHERE
    /// clause on `resource r`.
    fn base(&mut self, query: &SearchQuery, driver: Driver) {
        if driver.indexed(query) {
            // `+` keeps SQLite from reaching `r` through its type index: the driver set leads.
            self.sql.push("+r.deleted = 0");
            self.type_restriction("+r.type", &query.types);
            self.sql.push(" AND r.pk IN (");
            self.driver_set(query, driver);
            self.sql.push(")");
        } else {
            self.sql.push("r.deleted = 0");
            self.type_restriction("r.type", &query.types);
        }
        self.probe = driver != Driver::Sets;
        self.rest(query, driver);
    }

    /// `<driver index> d CROSS JOIN resource r WHERE ...`: the driver's index rows in their index
    /// order (pk order, its equality prefix being bound), each joined to its resource and probed.
    fn joined(&mut self, query: &SearchQuery, driver: Driver) {
        match driver {
            Driver::Compartment => {
                let patient = self
                    .sql
                    .bind_str(query.compartment.as_deref().unwrap_or(""));
                let _ = write!(
                    self.sql.text,
                    "compartment d CROSS JOIN resource r WHERE r.pk = d.res \
                     AND d.patient_id = {patient}"
                );
            }
            Driver::Group(index) => {
                if let Some([Condition::Match { param, test }]) =
                    query.filters.get(index).map(Vec::as_slice)
                {
                    let _ = write!(
                        self.sql.text,
                        "{} d CROSS JOIN resource r WHERE r.pk = d.res",
                        table_of(test.kind())
                    );
                    self.param_restriction("d.pid", &query.types, param);
                    self.test(test, "d.");
                }
            }
            Driver::Sets => self.sql.push("resource r WHERE 1"),
        }
        self.sql.push(" AND +r.deleted = 0");
        self.type_restriction("+r.type", &query.types);
        self.probe = true;
        self.rest(query, driver);
    }

    /// `SELECT res FROM <index> WHERE <the driver's condition>`.
    fn driver_set(&mut self, query: &SearchQuery, driver: Driver) {
        match driver {
            Driver::Compartment => {
                let patient = self
                    .sql
                    .bind_str(query.compartment.as_deref().unwrap_or(""));
                let _ = write!(
                    self.sql.text,
                    "SELECT res FROM compartment WHERE patient_id = {patient}"
                );
            }
            Driver::Group(index) if driver.indexed(query) => {
                let group = query.filters.get(index).map_or(&[][..], Vec::as_slice);
                for (position, alternative) in group.iter().enumerate() {
                    let Condition::Match { param, test } = alternative else {
                        continue;
                    };
                    if position > 0 {
                        self.sql.push(" UNION ");
                    }
                    let _ = write!(
                        self.sql.text,
                        "SELECT res FROM {} WHERE 1",
                        table_of(test.kind())
                    );
                    self.param_restriction("pid", &query.types, param);
                    self.test(test, "");
                }
            }
            Driver::Group(_) => self.sql.push("SELECT pk FROM resource WHERE 0"),
            Driver::Sets => self.sql.push("SELECT pk FROM resource WHERE 0"),
        }
    }

    /// ` AND <condition>` for the compartment and every filter group the driver does not cover.
    fn rest(&mut self, query: &SearchQuery, driver: Driver) {
        let indexed = driver.indexed(query);
        if let Some(patient) = &query.compartment
            && driver != Driver::Compartment
        {
            let patient = self.sql.bind_str(patient);
            if self.probe {
                let _ = write!(
                    self.sql.text,
                    " AND EXISTS (SELECT 1 FROM compartment \
                     WHERE patient_id = {patient} AND res = r.pk)"
                );
            } else {
                let _ = write!(
                    self.sql.text,
                    " AND r.pk IN (SELECT res FROM compartment WHERE patient_id = {patient})"
                );
            }
        }
        for (index, group) in query.filters.iter().enumerate() {
            if indexed && driver == Driver::Group(index) {
                continue;
            }
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
                let _ = write!(self.sql.text, " AND {column} IN ");
                self.type_list(many);
            }
        }
    }

    /// `(?, ?, ...)` binding each type.
    fn type_list(&mut self, types: &[String]) {
        self.sql.push("(");
        for (index, resource_type) in types.iter().enumerate() {
            let param = self.sql.bind_str(resource_type);
            let separator = if index == 0 { "" } else { ", " };
            let _ = write!(self.sql.text, "{separator}{param}");
        }
        self.sql.push(")");
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
    fn group(&mut self, alternatives: &[Condition], alias: &str, types: &[String]) {
        if alternatives.is_empty() {
            self.sql.push("0");
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
                    range.low.into(),
                    range.high.into(),
                );
            }
            Condition::Match { param, test } if self.probe => {
                let _ = write!(
                    self.sql.text,
                    "EXISTS (SELECT 1 FROM {} WHERE res = {alias}.pk",
                    table_of(test.kind())
                );
                // `+pid`: the probe reads the candidate's rows by primary key, never a range of
                // the search index (which for `category=laboratory` is most of the table).
                self.param_restriction("+pid", types, param);
                self.test(test, "");
                self.sql.push(")");
            }
            Condition::Match { param, test } => {
                let _ = write!(self.sql.text, "{alias}.pk IN (SELECT res FROM ");
                self.sql.push(table_of(test.kind()));
                self.sql.push(" WHERE 1");
                self.param_restriction("pid", types, param);
                self.test(test, "");
                self.sql.push(")");
            }
            Condition::Missing {
                param,
                kind,
                missing,
            } if self.probe => {
                let negation = if *missing { "NOT " } else { "" };
                let _ = write!(
                    self.sql.text,
                    "{negation}EXISTS (SELECT 1 FROM {} WHERE res = {alias}.pk",
                    table_of(*kind)
                );
                self.param_restriction("+pid", types, param);
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
                    "{alias}.pk {negation}IN (SELECT res FROM {} WHERE 1",
                    table_of(*kind)
                );
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
            } if self.probe => {
                self.aliases += 1;
                let link = format!("c{}", self.aliases);
                let target = format!("t{}", self.aliases);
                let _ = write!(
                    self.sql.text,
                    "EXISTS (SELECT 1 FROM idx_reference {link} \
                     JOIN resource {target} ON {target}.type = {link}.target_type \
                     AND {target}.id = {link}.target_id WHERE {link}.res = {alias}.pk \
                     AND {target}.deleted = 0"
                );
                self.param_restriction(&format!("+{link}.pid"), types, reference);
                self.type_restriction(&format!("{link}.target_type"), target_types);
                self.sql.push(" AND ");
                self.condition(inner, &target, target_types);
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
                     AND {target}.id = {link}.target_id WHERE {target}.deleted = 0"
                );
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
            } if self.probe => {
                self.aliases += 1;
                let link = format!("h{}", self.aliases);
                let source = format!("s{}", self.aliases);
                let _ = write!(
                    self.sql.text,
                    "EXISTS (SELECT 1 FROM idx_reference {link} \
                     JOIN resource {source} ON {source}.pk = {link}.res \
                     WHERE {link}.target_id = {alias}.id AND {link}.target_type = {alias}.type"
                );
                self.param_restriction(
                    &format!("{link}.pid"),
                    std::slice::from_ref(source_type),
                    reference_param,
                );
                self.sql.push(" AND ");
                self.condition(inner, &source, std::slice::from_ref(source_type));
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
                     AND {target}.id = {link}.target_id WHERE 1"
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

    /// ` AND <test>` on the columns of the test's index table (qualified with `t`, `""` or `"d."`).
    fn test(&mut self, test: &ValueTest, t: &str) {
        match test {
            ValueTest::Token { system, code } => {
                if let Some(code) = code {
                    let code = self.sql.bind_str(code);
                    let _ = write!(self.sql.text, " AND {t}code = {code}");
                }
                match system {
                    TokenSystem::Any => {}
                    TokenSystem::None => self.sql.push(&format!(" AND {t}system IS NULL")),
                    TokenSystem::Is(system) => {
                        let system = self.sql.bind_str(system);
                        let _ = write!(self.sql.text, " AND {t}system = {system}");
                    }
                }
            }
            ValueTest::TokenText(text) => self.starts_with(&format!("{t}text"), text),
            ValueTest::String { value, mode } => match mode {
                StringMode::StartsWith => self.starts_with(&format!("{t}normalized"), value),
                StringMode::Exact => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND {t}exact = {value}");
                }
                StringMode::Contains => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND instr({t}normalized, {value}) > 0");
                }
            },
            ValueTest::Date { prefix, range } => {
                self.sql.push(" AND ");
                let (low, high) = (format!("{t}low"), format!("{t}high"));
                self.range(*prefix, &low, &high, range.low.into(), range.high.into());
            }
            ValueTest::Number { prefix, low, high } => {
                self.sql.push(" AND ");
                let value = format!("{t}value");
                self.range(*prefix, &value, &value, (*low).into(), (*high).into());
            }
            ValueTest::Quantity {
                prefix,
                low,
                high,
                system,
                code,
            } => {
                self.sql.push(" AND ");
                let value = format!("{t}value");
                self.range(*prefix, &value, &value, (*low).into(), (*high).into());
                match (system, code) {
                    (Some(system), code) => {
                        let system = self.sql.bind_str(system);
                        let _ = write!(self.sql.text, " AND {t}system = {system}");
                        if let Some(code) = code {
                            let code = self.sql.bind_str(code);
                            let _ = write!(self.sql.text, " AND {t}code = {code}");
                        }
                    }
                    (None, Some(code)) => {
                        let code = self.sql.bind_str(code);
                        let _ =
                            write!(self.sql.text, " AND ({t}code = {code} OR {t}unit = {code})");
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
                    let _ = write!(self.sql.text, " AND {t}url = {url}");
                }
                if let Some(id) = id {
                    let id = self.sql.bind_str(id);
                    let _ = write!(self.sql.text, " AND {t}target_id = {id}");
                }
                if let Some(target_type) = target_type {
                    let target_type = self.sql.bind_str(target_type);
                    let _ = write!(self.sql.text, " AND {t}target_type = {target_type}");
                }
            }
            ValueTest::Uri { value, mode } => match mode {
                UriMode::Exact => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(self.sql.text, " AND {t}value = {value}");
                }
                UriMode::Below => self.starts_with(&format!("{t}value"), value),
                UriMode::Above => {
                    let value = self.sql.bind_str(value);
                    let _ = write!(
                        self.sql.text,
                        " AND {t}value <= {value} AND substr({value}, 1, length({t}value)) = {t}value"
                    );
                }
            },
        }
    }

    /// ` AND <column> starts with <prefix>`, as a range so that the index serves it: every string
    /// starting with `prefix` lies in `[prefix, prefix + U+10FFFF)` under byte-wise comparison.
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
        low: Value,
        high: Value,
    ) {
        let (rl, rh) = (low_column, high_column);
        let text = match prefix {
            Prefix::Eq | Prefix::Ne => {
                let (sl, sh) = (self.sql.bind(low), self.sql.bind(high));
                let negation = if prefix == Prefix::Ne { "NOT " } else { "" };
                format!("{negation}({rl} >= {sl} AND {rh} <= {sh})")
            }
            Prefix::Gt => format!("{rh} > {}", self.sql.bind(high)),
            Prefix::Lt => format!("{rl} < {}", self.sql.bind(low)),
            Prefix::Ge => format!("{rh} >= {}", self.sql.bind(low)),
            Prefix::Le => format!("{rl} <= {}", self.sql.bind(high)),
            Prefix::Sa => format!("{rl} > {}", self.sql.bind(high)),
            Prefix::Eb => format!("{rh} < {}", self.sql.bind(low)),
            Prefix::Ap => {
                let (sl, sh) = (self.sql.bind(low), self.sql.bind(high));
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

/// The columns selected by [`resource_from_row`], on alias `r`.
pub(crate) const RESOURCE_COLUMNS: &str = "r.pk, r.type, r.id, r.version, r.last_updated, r.json";

/// Reads a live resource from a row selected with [`RESOURCE_COLUMNS`], with its pk.
pub(crate) fn resource_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, StoredResource)> {
    Ok((
        row.get(0)?,
        StoredResource {
            resource_type: row.get(1)?,
            id: row.get(2)?,
            version: column_u64(row, 3)?,
            last_updated: Timestamp(row.get(4)?),
            deleted: false,
            json: row.get(5)?,
        },
    ))
}

/// Reads a non-negative integer column (versions, counts) as `u64`.
pub(crate) fn column_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// A JSON array of pks, bound as one parameter and read back with `json_each`.
fn pk_list(pks: impl IntoIterator<Item = i64>) -> String {
    let mut list = String::from("[");
    for (index, pk) in pks.into_iter().enumerate() {
        if index > 0 {
            list.push(',');
        }
        let _ = write!(list, "{pk}");
    }
    list.push(']');
    list
}

/// The resources with these pks, in the order of `pks`.
fn fetch_by_pk(connection: &Connection, pks: &[i64]) -> Result<Vec<(i64, StoredResource)>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM resource r \
         WHERE r.pk IN (SELECT value FROM json_each(?1))"
    ))?;
    let mut by_pk: HashMap<i64, StoredResource> = statement
        .query_map([pk_list(pks.iter().copied())], resource_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(pks
        .iter()
        .filter_map(|pk| by_pk.remove(pk).map(|resource| (*pk, resource)))
        .collect())
}

/// `_include` and `_revinclude` of the matches, then one more level for `:iterate` ones. Each
/// resource comes once, and never one that is already a match.
fn includes(
    connection: &Connection,
    query: &SearchQuery,
    matches: &[(i64, StoredResource)],
) -> Result<Vec<StoredResource>> {
    if matches.is_empty() || (query.includes.is_empty() && query.revincludes.is_empty()) {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().map(|(pk, _)| *pk).collect();
    let mut included: Vec<(i64, StoredResource)> = Vec::new();
    let sources: Vec<i64> = matches.iter().map(|(pk, _)| *pk).collect();
    include_level(connection, query, &sources, false, &mut seen, &mut included)?;
    let first_level: Vec<i64> = included.iter().map(|(pk, _)| *pk).collect();
    if !first_level.is_empty() {
        include_level(
            connection,
            query,
            &first_level,
            true,
            &mut seen,
            &mut included,
        )?;
    }
    Ok(included.into_iter().map(|(_, resource)| resource).collect())
}

/// Applies the includes (only `:iterate` ones when `iterating`) to the resources `from`.
fn include_level(
    connection: &Connection,
    query: &SearchQuery,
    from: &[i64],
    iterating: bool,
    seen: &mut HashSet<i64>,
    included: &mut Vec<(i64, StoredResource)>,
) -> Result<()> {
    let from = pk_list(from.iter().copied());
    let applies = |include: &&Include| !iterating || include.iterate;
    for include in query.includes.iter().filter(applies) {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM idx_reference x \
             JOIN resource r ON r.type = x.target_type AND r.id = x.target_id \
             WHERE x.res IN (SELECT value FROM json_each(?1)) \
             AND x.pid = (SELECT pid FROM search_param WHERE type = ?2 AND param = ?3) \
             AND (?4 IS NULL OR x.target_type = ?4) AND r.deleted = 0 ORDER BY r.pk"
        ))?;
        let rows = statement.query_map(
            (
                &from,
                &include.source_type,
                &include.param,
                &include.target_type,
            ),
            resource_from_row,
        )?;
        for row in rows {
            let (pk, resource) = row?;
            if seen.insert(pk) {
                included.push((pk, resource));
            }
        }
    }
    for include in query.revincludes.iter().filter(applies) {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resource m \
             JOIN idx_reference x \
             ON x.pid = (SELECT pid FROM search_param WHERE type = ?2 AND param = ?3) \
             AND x.target_id = m.id AND x.target_type = m.type \
             JOIN resource r ON r.pk = x.res \
             WHERE m.pk IN (SELECT value FROM json_each(?1)) AND (?4 IS NULL OR m.type = ?4) \
             ORDER BY r.pk"
        ))?;
        let rows = statement.query_map(
            (
                &from,
                &include.source_type,
                &include.param,
                &include.target_type,
            ),
            resource_from_row,
        )?;
        for row in rows {
            let (pk, resource) = row?;
            if seen.insert(pk) {
                included.push((pk, resource));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
