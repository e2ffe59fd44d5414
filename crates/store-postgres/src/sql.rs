//! Building SQL text with numbered parameters (`$1`, `$2`, ...) bound alongside, and the typed
//! values that sort keys and cursors carry.

use std::fmt;

use tokio_postgres::types::ToSql;

/// A bound parameter value.
pub(crate) type BoxedParam = Box<dyn ToSql + Sync + Send>;

/// A sort key value of a boundary row, as read from the database and carried in cursors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// The resource has no value for this key (sorts last).
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// The SQL type of a sort key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Int,
    Real,
    Text,
}

impl Value {
    /// Whether this value can be compared with a column of type `key_type` (`Null` always can be
    /// represented; whether the column may be missing is checked separately).
    pub(crate) fn fits(&self, key_type: KeyType) -> bool {
        matches!(
            (self, key_type),
            (Value::Null, _)
                | (Value::Int(_), KeyType::Int)
                | (Value::Real(_), KeyType::Real)
                | (Value::Text(_), KeyType::Text)
        )
    }

    /// The value as a bound parameter. `Null` is never bound (the SQL tests `IS NULL` instead).
    pub(crate) fn boxed(&self) -> BoxedParam {
        match self {
            Value::Null => Box::new(None::<String>),
            Value::Int(value) => Box::new(*value),
            Value::Real(value) => Box::new(*value),
            Value::Text(value) => Box::new(value.clone()),
        }
    }
}

/// SQL text with numbered parameters bound alongside.
#[derive(Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<BoxedParam>,
}

/// A bound parameter; displays as its placeholder `$N`.
#[derive(Clone, Copy)]
pub(crate) struct Param(usize);

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

impl Sql {
    pub(crate) fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> Param {
        self.params.push(Box::new(value));
        Param(self.params.len())
    }

    pub(crate) fn bind_boxed(&mut self, value: BoxedParam) -> Param {
        self.params.push(value);
        Param(self.params.len())
    }

    pub(crate) fn bind_str(&mut self, value: &str) -> Param {
        self.bind(value.to_owned())
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// The parameters as the driver takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        params(&self.params)
    }
}

/// Borrows boxed parameters as the driver takes them.
pub(crate) fn params(values: &[BoxedParam]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect()
}
