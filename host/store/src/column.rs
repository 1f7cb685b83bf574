//! Reading a row's columns by name into the values the store's structs hold.
//!
//! A column is read by its name in the SELECT (or its `AS` alias), not by its position, so
//! that a change to a column list cannot hand a struct field its neighbour's value. A column
//! that holds a closed set of names, an id or JSON is parsed where it is read: a value that
//! does not parse fails the read like any other conversion, as a
//! `FromSqlConversionFailure` carrying an [`Invalid`], which the crate's
//! `From<rusqlite::Error>` turns into [`Error::Corrupt`](crate::Error::Corrupt). The
//! alternative, reading text and parsing it after the query, gave every row mapper a
//! `Result<Result<..>>` and every caller the unwrapping of it.

use rusqlite::Row;
use rusqlite::types::Type;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::str::FromStr;

/// A value in the database that does not parse as what its column holds.
#[derive(Debug, thiserror::Error)]
#[error("{message} (column {column})")]
pub(crate) struct Invalid {
    column: String,
    message: String,
}

/// The error for `column` of `r` holding a value that is not valid: why, in `message`.
pub(crate) fn invalid(r: &Row<'_>, column: &str, message: impl Display) -> rusqlite::Error {
    let cause = Invalid {
        column: column.to_owned(),
        message: message.to_string(),
    };
    match r.as_ref().column_index(column) {
        Ok(index) => rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(cause)),
        Err(e) => e,
    }
}

/// The text in `column`, parsed as `T` (a closed set's name, an id).
pub(crate) fn parsed<T>(r: &Row<'_>, column: &str) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = r.get(column)?;
    text.parse().map_err(|e| invalid(r, column, e))
}

/// The JSON text in `column`, deserialized.
pub(crate) fn json<T: DeserializeOwned>(r: &Row<'_>, column: &str) -> rusqlite::Result<T> {
    let text: String = r.get(column)?;
    serde_json::from_str(&text).map_err(|e| invalid(r, column, e))
}

/// The JSON text in `column`, deserialized; `None` when the column is NULL.
pub(crate) fn optional_json<T: DeserializeOwned>(
    r: &Row<'_>,
    column: &str,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = r.get(column)?;
    text.map(|text| serde_json::from_str(&text).map_err(|e| invalid(r, column, e)))
        .transpose()
}
