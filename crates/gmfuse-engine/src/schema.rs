//! OpenAPI schemas written by hand (feature `utoipa`), for the types whose derive would be
//! wrong: the registry enums ([`crate::methods::MethodId`], [`crate::solvers::SolverId`]), whose
//! wire names come from a `macro_rules!` list that `derive(ToSchema)` cannot read.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A string schema that allows exactly `names`.
pub(crate) fn string_enum_schema<'a>(
    description: &str,
    names: impl Iterator<Item = &'a str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names.map(String::from)))
        .into()
}
