//! The row bound of a query, refused before it runs when it is too large.
//!
//! async-graphql's own complexity counts each field once, so `accounts(first: 1000) {
//! rewardList(first: 1000) { … } }` costs a few points while it may read a million rows. This
//! counts rows instead: a list field (one with a `first` argument, default
//! [`DEFAULT_FIRST`]) returns up to `first` rows for each row of the list above it, and a
//! query's cost is the rows all its lists may return together. Over [`MAX_ROWS`] it is refused
//! with an error that says the bound, before any resolver reads the database.

use std::sync::Arc;

use async_graphql::{
    Name, Positioned, ServerError, ServerResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet},
};
use std::collections::HashMap;

use crate::query::DEFAULT_FIRST;

/// The most rows one query may return, over all its lists.
pub const MAX_ROWS: u64 = 200_000;

/// Fragments nested deeper than this are not followed (validation refuses cycles later; the
/// depth limit refuses deep queries).
const MAX_NESTING: usize = 32;

/// The rows `doc` may return, with `variables` for `first: $n`.
pub fn rows(doc: &ExecutableDocument, variables: &Variables, lists: &[String]) -> u64 {
    let walk = Walk {
        fragments: &doc.fragments,
        variables,
        lists,
    };
    doc.operations
        .iter()
        .map(|(_, op)| walk.set(&op.node.selection_set.node, 1, 0))
        .fold(0, u64::saturating_add)
}

struct Walk<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a Variables,
    lists: &'a [String],
}

impl Walk<'_> {
    /// The rows `set` may return when its parent is `parents` rows.
    fn set(&self, set: &SelectionSet, parents: u64, nesting: usize) -> u64 {
        if nesting > MAX_NESTING {
            return 0;
        }
        let mut total = 0u64;
        for item in &set.items {
            let rows = match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let first = f.get_argument("first").map(|v| &v.node);
                    let is_list =
                        first.is_some() || self.lists.iter().any(|l| l == f.name.node.as_str());
                    if is_list {
                        // A literal or a variable; anything else counts the default, and
                        // the field itself refuses it.
                        let page = first.map_or(DEFAULT_FIRST as u64, |v| {
                            let v = v.clone().into_const_with(|name| {
                                self.variables.get(&name).cloned().ok_or(())
                            });
                            match v {
                                Ok(Value::Number(n)) => n.as_u64().unwrap_or(0),
                                _ => DEFAULT_FIRST as u64,
                            }
                        });
                        let here = parents.saturating_mul(page);
                        here.saturating_add(self.set(&f.selection_set.node, here, nesting + 1))
                    } else {
                        self.set(&f.selection_set.node, parents, nesting + 1)
                    }
                }
                Selection::InlineFragment(f) => {
                    self.set(&f.node.selection_set.node, parents, nesting + 1)
                }
                Selection::FragmentSpread(s) => self
                    .fragments
                    .get(&s.node.fragment_name.node)
                    .map_or(0, |f| {
                        self.set(&f.node.selection_set.node, parents, nesting + 1)
                    }),
            };
            total = total.saturating_add(rows);
        }
        total
    }
}

/// The extension that refuses queries over [`MAX_ROWS`].
pub struct RowLimit {
    /// Fields that are lists without a `first` argument in the query (they still page).
    pub lists: Arc<Vec<String>>,
}

impl ExtensionFactory for RowLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RowLimitExtension {
            lists: self.lists.clone(),
        })
    }
}

struct RowLimitExtension {
    lists: Arc<Vec<String>>,
}

#[async_trait::async_trait]
impl Extension for RowLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let rows = rows(&doc, variables, &self.lists);
        if rows > MAX_ROWS {
            return Err(ServerError::new(
                format!(
                    "query is too complex: its lists could return {rows} rows, more than \
                     {MAX_ROWS} (each list returns up to `first` rows, default {DEFAULT_FIRST}, \
                     for every row above it: lower `first` or split the query)"
                ),
                None,
            ));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str, variables: serde_json::Value) -> u64 {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        rows(&doc, &variables, &["chargeList".to_owned()])
    }

    #[test]
    fn lists_multiply_their_pages() {
        assert_eq!(
            cost("{ _meta { block { number } } }", serde_json::json!({})),
            0
        );
        assert_eq!(
            cost("{ accounts(first: 10) { id } }", serde_json::json!({})),
            10
        );
        assert_eq!(
            cost(
                "{ accounts(first: 10) { chargeList { id } } }",
                serde_json::json!({})
            ),
            10 + 10 * 100
        );
        assert_eq!(
            cost(
                "query($n: Int) { a: accounts(first: $n) { chargeList(first: 3) { id } } b: models(first: 2) { id } }",
                serde_json::json!({ "n": 7 })
            ),
            7 + 21 + 2
        );
        assert_eq!(
            cost(
                "{ accounts(first: 1000) { ...F } } fragment F on Account { chargeList(first: 1000) { id } }",
                serde_json::json!({})
            ),
            1000 + 1_000_000
        );
    }
}
