//! The Graph's collection arguments (`where`, `orderBy`, `orderDirection`, `first`, `skip`)
//! turned into SQL over a catalog table: identifiers come from the catalog only, every value is
//! a bound parameter, and a bad argument is refused with a message naming it.

use openledger_indexer::{
    catalog::{self, Column, Kind, Table},
    db::{Bind, Dialect},
    value::Amount,
};
use serde_json::Value as Json;

/// Most rows one page may ask for (The Graph's cap).
pub const MAX_FIRST: i64 = 1_000;
/// Rows a page gets when `first` is not given.
pub const DEFAULT_FIRST: i64 = 100;
/// Most rows a page may skip (The Graph's cap; use cursors beyond).
pub const MAX_SKIP: i64 = 5_000;
/// Deepest nesting of `and`/`or`/child filters.
const MAX_FILTER_DEPTH: usize = 8;

/// A refused argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// camelCase of a snake_case column name: its GraphQL field name.
pub fn field_name(column: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The column whose GraphQL field name is `field`.
pub fn column_of<'t>(table: &'t Table, field: &str) -> Option<&'t Column> {
    table.all_columns().find(|c| field_name(c.name) == field)
}

/// The filter operators, longest suffix first, with their SQL.
const OPS: &[(&str, &str)] = &[
    ("_not_in", "NOT IN"),
    ("_in", "IN"),
    ("_not", "<>"),
    ("_gte", ">="),
    ("_gt", ">"),
    ("_lte", "<="),
    ("_lt", "<"),
];

/// The operators a column of `kind` gets (besides equality).
pub fn ops_of(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Bool => &OPS[..3],
        _ => OPS,
    }
}

/// A SQL fragment with its binds, placeholders numbered from `first_bind`.
pub struct Where {
    dialect: Dialect,
    /// The binds, in order.
    pub binds: Vec<Bind>,
}

impl Where {
    /// A builder for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            binds: Vec::new(),
        }
    }

    /// Binds `b`; returns its placeholder.
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        self.dialect.placeholder(self.binds.len())
    }

    fn value(&mut self, column: &Column, v: &Json) -> Result<String, Refused> {
        let bad = || {
            Refused(format!(
                "{} expects a {} value, got {v}",
                field_name(column.name),
                scalar_of(column.kind)
            ))
        };
        let bind = match (column.kind, v) {
            (_, Json::Null) => return Ok("NULL".to_owned()),
            (Kind::Int, Json::Number(n)) => Bind::Int(Some(n.as_i64().ok_or_else(bad)?)),
            (Kind::Int, Json::String(s)) => Bind::Int(Some(s.parse().map_err(|_| bad())?)),
            (Kind::Bool, Json::Bool(b)) => Bind::Bool(Some(*b)),
            (Kind::Amount, Json::String(s)) => {
                Bind::Text(Some(Amount::parse_user(s).ok_or_else(bad)?))
            }
            (Kind::Amount, Json::Number(n)) if n.is_u64() => {
                Bind::Text(Some(Amount::parse_user(&n.to_string()).ok_or_else(bad)?))
            }
            (Kind::Bytes, Json::String(s)) => Bind::Text(Some(s.to_ascii_lowercase())),
            (Kind::Text, Json::String(s)) => Bind::Text(Some(s.clone())),
            _ => return Err(bad()),
        };
        Ok(self.bind(bind))
    }

    /// The condition `filter` (a `where` object) sets on `table` aliased `alias`.
    pub fn filter(
        &mut self,
        table: &'static Table,
        alias: &str,
        filter: &Json,
        depth: usize,
    ) -> Result<String, Refused> {
        if depth > MAX_FILTER_DEPTH {
            return Err(Refused(format!(
                "filters nest deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        let Json::Object(map) = filter else {
            return Err(Refused("where must be an object".into()));
        };
        let mut parts = Vec::new();
        for (key, v) in map {
            if key == "and" || key == "or" {
                let list = v
                    .as_array()
                    .ok_or_else(|| Refused(format!("{key} takes a list of filters")))?;
                let inner = list
                    .iter()
                    .map(|f| self.filter(table, alias, f, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                if !inner.is_empty() {
                    let joiner = if key == "and" { " AND " } else { " OR " };
                    parts.push(format!("({})", inner.join(joiner)));
                }
                continue;
            }
            if let Some(field) = key.strip_suffix('_')
                && let Some(column) = column_of(table, field)
                && let Some(child) = column.refers
            {
                let child_table = catalog::table(child).expect("catalog reference");
                let child_alias = format!("{alias}_{}", depth + 1);
                let cond = self.filter(child_table, &child_alias, v, depth + 1)?;
                parts.push(format!(
                    "{alias}.{} IN (SELECT {child_alias}.id FROM {} {child_alias} WHERE {cond})",
                    column.name, child_table.name
                ));
                continue;
            }
            let (field, op) = OPS
                .iter()
                .find_map(|(suffix, sql)| key.strip_suffix(suffix).map(|f| (f, *sql)))
                .unwrap_or((key.as_str(), "="));
            let column = column_of(table, field).ok_or_else(|| {
                Refused(format!("{} has no field {key} to filter on", table.entity))
            })?;
            if matches!(op, "IN" | "NOT IN") {
                let list = v
                    .as_array()
                    .ok_or_else(|| Refused(format!("{key} takes a list")))?;
                if list.len() > MAX_FIRST as usize {
                    return Err(Refused(format!("{key} lists more than {MAX_FIRST} values")));
                }
                if list.is_empty() {
                    parts.push(if op == "IN" { "1 = 0" } else { "1 = 1" }.to_owned());
                    continue;
                }
                let marks = list
                    .iter()
                    .map(|x| self.value(column, x))
                    .collect::<Result<Vec<_>, _>>()?;
                parts.push(format!(
                    "{alias}.{} {op} ({})",
                    column.name,
                    marks.join(", ")
                ));
            } else if v.is_null() {
                let is = if op == "<>" { "IS NOT NULL" } else { "IS NULL" };
                parts.push(format!("{alias}.{} {is}", column.name));
            } else {
                let mark = self.value(column, v)?;
                parts.push(format!("{alias}.{} {op} {mark}", column.name));
            }
        }
        Ok(if parts.is_empty() {
            "1 = 1".to_owned()
        } else {
            parts.join(" AND ")
        })
    }
}

/// The GraphQL scalar of a column kind.
pub fn scalar_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "Int",
        Kind::Amount => "BigInt",
        Kind::Text => "String",
        Kind::Bytes => "Bytes",
        Kind::Bool => "Boolean",
    }
}

/// `first` and `skip` checked against the caps.
pub fn page(first: Option<i64>, skip: Option<i64>) -> Result<(i64, i64), Refused> {
    let first = first.unwrap_or(DEFAULT_FIRST);
    if !(0..=MAX_FIRST).contains(&first) {
        return Err(Refused(format!(
            "first must be between 0 and {MAX_FIRST}, got {first}"
        )));
    }
    let skip = skip.unwrap_or(0);
    if !(0..=MAX_SKIP).contains(&skip) {
        return Err(Refused(format!(
            "skip must be between 0 and {MAX_SKIP}, got {skip}; page further with a connection's cursor"
        )));
    }
    Ok((first, skip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_become_bound_sql() {
        let t = catalog::table("contributions").unwrap();
        let mut w = Where::new(Dialect::Postgres);
        let sql = w
            .filter(
                t,
                "t",
                &json!({"earned_gt": "10", "status_in": ["accepted"], "datanet_": {"owner": "0xAB"}, "or": [{"tokens_lt": 5}, {"tokens": 9}]}),
                0,
            )
            .unwrap();
        // Keys in name order (serde_json's map), each value bound.
        assert_eq!(
            sql,
            "t.datanet IN (SELECT t_1.id FROM datanets t_1 WHERE t_1.owner = $1) AND t.earned > $2 \
             AND (t.tokens < $3 OR t.tokens = $4) AND t.status IN ($5)"
        );
        assert_eq!(w.binds.len(), 5);
        assert!(w.filter(t, "t", &json!({"nope": 1}), 0).is_err());
        assert!(w.filter(t, "t", &json!({"earned": "-1"}), 0).is_err());
        assert!(page(Some(1001), None).is_err());
        assert!(page(None, Some(5001)).is_err());
    }
}
