//! Cursor paging, one shape for every list (`/v1/models`, `/v1/jobs`, `/v1/datasets`,
//! `/v1/architectures`): `?limit=&cursor=` in, [`Page`] out. A cursor is opaque to clients
//! (each list reads its own: an id, or a name); the response of a page is bounded by
//! [`MAX_LIMIT`] items of bounded size.
//!
//! One generic type serves every list; its OpenAPI schema is named by the item
//! ([`PageItem::PAGE_NAME`], e.g. `JobPage`) and refers to the item's own schema, so generated
//! clients get one class per page and no inlined copy of the item.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::http::error::ApiError;

/// Items per page when the query does not say.
pub const DEFAULT_LIMIT: u32 = 20;
/// The most items one page holds.
pub const MAX_LIMIT: u32 = 100;

/// A list item type and the schema name of its page.
pub trait PageItem: ToSchema {
    /// `JobPage` for `JobView`, …
    const PAGE_NAME: &'static str;
}

/// One page of a list, in the list's order.
#[derive(Serialize, Deserialize, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `items` (at most `limit` of them, read from a source that was asked for
    /// `limit`): when it is full there may be more, after the cursor of its last item.
    pub fn of(items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Self {
        let next_cursor = (items.len() >= limit as usize)
            .then(|| items.last().map(cursor))
            .flatten();
        Page { items, next_cursor }
    }
}

impl<T: PageItem> PartialSchema for Page<T> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "One page of a list. Pass `next_cursor` as `cursor` to read the next page.",
            ))
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name(T::name())),
            )
            .required("items")
            .property(
                "next_cursor",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Pass as `cursor` for the next page; absent on the last page.",
                    )),
            )
            .into()
    }
}

impl<T: PageItem> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(T::PAGE_NAME)
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 200)]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size asked for: 1..=[`MAX_LIMIT`], [`DEFAULT_LIMIT`] by default.
    ///
    /// # Errors
    /// [`ApiError::InvalidQuery`] outside the range.
    pub fn limit(&self) -> Result<u32, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::InvalidQuery(format!(
                "limit must be 1..={MAX_LIMIT}, got {limit}"
            )))
        }
    }

    /// The cursor of a list whose cursors are ids.
    ///
    /// # Errors
    /// [`ApiError::InvalidQuery`] when it is not one.
    pub fn uuid_cursor(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        uuid_cursor(self.cursor.as_deref())
    }
}

/// A cursor that must be an id.
///
/// # Errors
/// [`ApiError::InvalidQuery`] when it is not one.
pub fn uuid_cursor(cursor: Option<&str>) -> Result<Option<uuid::Uuid>, ApiError> {
    cursor
        .map(|c| {
            uuid::Uuid::parse_str(c)
                .map_err(|_| ApiError::InvalidQuery(format!("cursor `{c}` is not one of ours")))
        })
        .transpose()
}

/// A list that starts with fixed built-in items (presets, built-in datasets) and goes on
/// with stored ones: the built-ins that come after `cursor` (all of them without one), at most
/// `limit`, and the cursor to read the stored items from (`None`: from their start, when the
/// cursor is absent or names a built-in).
pub fn after_builtins<T>(
    builtins: Vec<T>,
    key: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    limit: u32,
) -> (Vec<T>, Option<&str>) {
    let (mut rest, stored) = match cursor {
        None => (builtins, None),
        Some(c) => match builtins.iter().position(|b| key(b) == c) {
            Some(i) => (builtins.into_iter().skip(i + 1).collect(), None),
            None => (Vec::new(), Some(c)),
        },
    };
    rest.truncate(limit as usize);
    (rest, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_names_its_last_item_and_a_short_one_ends_the_list() {
        let full = Page::of(vec![3, 2], 2, ToString::to_string);
        assert_eq!(full.next_cursor.as_deref(), Some("2"));
        let short = Page::of(vec![1], 2, ToString::to_string);
        assert_eq!(short.next_cursor, None);
        let empty = Page::<u8>::of(vec![], 2, ToString::to_string);
        assert_eq!(empty.next_cursor, None);
    }

    #[test]
    fn built_ins_come_first_and_a_stored_cursor_skips_them() {
        let b = || vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let names = |v: Vec<String>| v.join(",");
        let (first, stored) = after_builtins(b(), String::as_str, None, 2);
        assert_eq!((names(first), stored), ("a,b".to_string(), None));
        let (rest, stored) = after_builtins(b(), String::as_str, Some("a"), 5);
        assert_eq!((names(rest), stored), ("b,c".to_string(), None));
        let (none, stored) = after_builtins(b(), String::as_str, Some("c"), 5);
        assert_eq!((names(none), stored), (String::new(), None));
        let (none, stored) = after_builtins(b(), String::as_str, Some("x9"), 5);
        assert_eq!((names(none), stored), (String::new(), Some("x9")));
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        let q = |limit| PageQuery {
            limit,
            cursor: None,
        };
        assert_eq!(q(None).limit().unwrap(), 20);
        assert_eq!(q(Some(100)).limit().unwrap(), 100);
        assert!(q(Some(0)).limit().is_err());
        assert!(q(Some(101)).limit().is_err());
    }
}
