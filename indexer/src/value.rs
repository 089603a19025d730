//! Values of the catalog's columns, and rows made of them.
//!
//! uint256 amounts are kept as [`U256`] in memory and as 78-digit zero-padded decimal text in
//! the database ([`Amount`]): SQLite has no 256-bit numeric (diesel reads SQLite NUMERIC
//! through f64), text is exact on both databases, and padded text sorts like the number.

use alloy::primitives::U256;
use serde_json::{Map, Value as Json, json};

use crate::{
    catalog::{Kind, Table},
    error::{Error, Result},
};

/// Digits of the largest uint256 (2²⁵⁶ − 1 has 78).
pub const AMOUNT_DIGITS: usize = 78;

/// The database form of uint256 amounts.
pub struct Amount;

impl Amount {
    /// `value` as 78-digit zero-padded decimal text.
    pub fn encode(value: U256) -> String {
        format!("{:0>width$}", value.to_string(), width = AMOUNT_DIGITS)
    }

    /// Padded (or plain) decimal text back to the number.
    pub fn decode(text: &str) -> Result<U256> {
        U256::from_str_radix(text, 10).map_err(|_| Error::Corrupt {
            what: format!("amount {text:?} is not a uint256"),
        })
    }

    /// Decimal text as the user wrote it, checked and padded for comparison in SQL.
    pub fn parse_user(text: &str) -> Option<String> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        U256::from_str_radix(text, 10).ok().map(Self::encode)
    }
}

/// One column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL (nullable columns only).
    Null,
    /// An `Int` column.
    Int(i64),
    /// An `Amount` column.
    Amount(U256),
    /// A `Text` or `Bytes` column.
    Text(String),
    /// A `Bool` column.
    Bool(bool),
}

impl Value {
    /// The default a new row starts with: zero, empty, false, or NULL where allowed.
    pub fn zero(kind: Kind, nullable: bool) -> Self {
        if nullable {
            return Self::Null;
        }
        match kind {
            Kind::Int => Self::Int(0),
            Kind::Amount => Self::Amount(U256::ZERO),
            Kind::Text | Kind::Bytes => Self::Text(String::new()),
            Kind::Bool => Self::Bool(false),
        }
    }

    /// As JSON: integers and booleans as themselves, amounts as decimal strings.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Int(i) => json!(i),
            Self::Amount(a) => json!(a.to_string()),
            Self::Text(s) => json!(s),
            Self::Bool(b) => json!(b),
        }
    }

    /// Back from what [`Value::to_json`] or the database's JSON row functions produced (SQLite
    /// gives booleans as 0/1 and amounts as padded text).
    pub fn from_json(kind: Kind, json: &Json) -> Result<Self> {
        let bad = || Error::Corrupt {
            what: format!("{json} is not a {kind:?}"),
        };
        Ok(match (kind, json) {
            (_, Json::Null) => Self::Null,
            (Kind::Int, j) => Self::Int(j.as_i64().ok_or_else(bad)?),
            (Kind::Amount, Json::String(s)) => Self::Amount(Amount::decode(s)?),
            (Kind::Text | Kind::Bytes, Json::String(s)) => Self::Text(s.clone()),
            (Kind::Bool, Json::Bool(b)) => Self::Bool(*b),
            (Kind::Bool, j) => Self::Bool(j.as_i64().ok_or_else(bad)? != 0),
            _ => return Err(bad()),
        })
    }

    /// The integer of an `Int` value (0 otherwise).
    pub fn int(&self) -> i64 {
        match self {
            Self::Int(i) => *i,
            _ => 0,
        }
    }

    /// The amount of an `Amount` value (0 otherwise).
    pub fn amount(&self) -> U256 {
        match self {
            Self::Amount(a) => *a,
            _ => U256::ZERO,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v as i64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(v.into())
    }
}
impl From<U256> for Value {
    fn from(v: U256) -> Self {
        Self::Amount(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One row of a catalog table: a value per column, `id` first.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its table.
    pub table: &'static Table,
    /// Its values, in [`Table::all_columns`] order.
    pub values: Vec<Value>,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.table.name == other.table.name && self.values == other.values
    }
}

impl Eq for Row {}

impl Row {
    /// A new row of `table` with this `id` and every other column at its zero.
    pub fn new(table: &'static Table, id: impl Into<String>) -> Self {
        let mut values: Vec<Value> = table
            .all_columns()
            .map(|c| Value::zero(c.kind, c.nullable))
            .collect();
        values[0] = Value::Text(id.into());
        Self { table, values }
    }

    /// Its `id`.
    pub fn id(&self) -> &str {
        match &self.values[0] {
            Value::Text(s) => s,
            _ => "",
        }
    }

    fn index(&self, name: &str) -> usize {
        self.table
            .all_columns()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.table.name))
    }

    /// The value of column `name` (a programming error if there is none).
    pub fn get(&self, name: &str) -> &Value {
        &self.values[self.index(name)]
    }

    /// Sets column `name`.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        let i = self.index(name);
        self.values[i] = value.into();
        self
    }

    /// Adds `delta` to the `Int` column `name`.
    pub fn add_int(&mut self, name: &str, delta: i64) -> &mut Self {
        let v = self.get(name).int() + delta;
        self.set(name, v)
    }

    /// Adds `delta` to the `Amount` column `name`.
    pub fn add_amount(&mut self, name: &str, delta: U256) -> Result<&mut Self> {
        let v = self
            .get(name)
            .amount()
            .checked_add(delta)
            .ok_or_else(|| Error::Overflow {
                what: format!("{}.{} of {}", self.table.name, name, self.id()),
            })?;
        Ok(self.set(name, v))
    }

    /// Subtracts `delta` from the `Amount` column `name`.
    pub fn sub_amount(&mut self, name: &str, delta: U256) -> Result<&mut Self> {
        let v = self
            .get(name)
            .amount()
            .checked_sub(delta)
            .ok_or_else(|| Error::Overflow {
                what: format!("{}.{} of {} below zero", self.table.name, name, self.id()),
            })?;
        Ok(self.set(name, v))
    }

    /// As a JSON object keyed by column name (the undo log's and the dumps' form).
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        for (c, v) in self.table.all_columns().zip(&self.values) {
            map.insert(c.name.to_owned(), v.to_json());
        }
        Json::Object(map)
    }

    /// Back from [`Row::to_json`] or a database JSON row.
    pub fn from_json(table: &'static Table, json: &Json) -> Result<Self> {
        let values = table
            .all_columns()
            .map(|c| Value::from_json(c.kind, json.get(c.name).unwrap_or(&Json::Null)))
            .collect::<Result<_>>()?;
        Ok(Self { table, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_near_two_to_the_256_round_trip_and_sort_as_text() {
        let max = U256::MAX;
        let near = [
            U256::ZERO,
            U256::from(1),
            max - U256::from(1),
            max,
            U256::from(1) << 255,
        ];
        for v in near {
            let text = Amount::encode(v);
            assert_eq!(text.len(), AMOUNT_DIGITS);
            assert_eq!(Amount::decode(&text).unwrap(), v);
        }
        let mut texts: Vec<String> = near.iter().map(|v| Amount::encode(*v)).collect();
        texts.sort();
        let mut sorted = near.to_vec();
        sorted.sort();
        assert_eq!(
            texts,
            sorted
                .iter()
                .map(|v| Amount::encode(*v))
                .collect::<Vec<_>>()
        );
        assert_eq!(Amount::parse_user("-1"), None);
        assert_eq!(Amount::parse_user(&format!("{max}0")), None);
    }
}
