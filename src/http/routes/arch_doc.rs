//! The OpenAPI schema of an architecture spec ([`ArchSpecDoc`]) and of its ops ([`OpDoc`]):
//! one named schema per op (`Pad2dOp`, `Conv2dOp`, …; each with the graph fields `name`,
//! `input`, `inputs`) and `Op`, their `oneOf` with a
//! discriminator on `op`, so generated clients get one class per op and pick it by the tag.
//! Documentation only: specs are parsed by the engine's `ArchSpec`. An op added to the engine
//! is one row of [`OPS`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, Discriminator, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::engine::arch::bounds::{MAX_KERNEL, MAX_PADDING, MAX_STRIDE};

/// A field of an op.
#[derive(Clone, Copy)]
enum Field {
    /// A tensor name.
    Tensor,
    /// A count in `min..=max`.
    Count(usize, usize),
    /// `replicate` or `zero`.
    PadMode,
    /// A positive number (a batch norm's `eps`).
    Epsilon,
}

/// One op: its tag, schema name, description and fields (`name`, kind, required).
struct OpRow {
    tag: &'static str,
    schema: &'static str,
    description: &'static str,
    fields: &'static [(&'static str, Field, bool)],
}

const KERNEL: Field = Field::Count(1, MAX_KERNEL);
const STRIDE: Field = Field::Count(1, MAX_STRIDE);
const PADDING: Field = Field::Count(0, MAX_PADDING);

/// Every op of an ArchSpec, in the engine's order.
const OPS: &[OpRow] = &[
    OpRow {
        tag: "pad2d",
        schema: "Pad2dOp",
        description: "Pad height and width by `padding` on every side.",
        fields: &[("mode", Field::PadMode, true), ("padding", PADDING, true)],
    },
    OpRow {
        tag: "conv2d",
        schema: "Conv2dOp",
        description: "2-D cross-correlation; `weight` is `[out, in, kh, kw]`, `bias` is \
                      `[out]`; `stride` defaults to 1, zero `padding` to 0.",
        fields: &[
            ("weight", Field::Tensor, true),
            ("bias", Field::Tensor, false),
            ("stride", STRIDE, false),
            ("padding", PADDING, false),
        ],
    },
    OpRow {
        tag: "linear",
        schema: "LinearOp",
        description: "`y = x Wᵀ + b`; `weight` is `[out, in]`, `bias` is `[out]`.",
        fields: &[
            ("weight", Field::Tensor, true),
            ("bias", Field::Tensor, false),
        ],
    },
    OpRow {
        tag: "relu",
        schema: "ReluOp",
        description: "`max(x, 0)`.",
        fields: &[],
    },
    OpRow {
        tag: "maxpool2d",
        schema: "Maxpool2dOp",
        description: "Max pooling; padding counts as −∞ (PyTorch semantics, floor mode); \
                      `stride` defaults to `kernel`.",
        fields: &[
            ("kernel", KERNEL, true),
            ("stride", STRIDE, false),
            ("padding", PADDING, false),
        ],
    },
    OpRow {
        tag: "avgpool2d",
        schema: "Avgpool2dOp",
        description: "Average pooling; padding counts as zeros and is in the divisor \
                      (PyTorch default); `stride` defaults to `kernel`.",
        fields: &[
            ("kernel", KERNEL, true),
            ("stride", STRIDE, false),
            ("padding", PADDING, false),
        ],
    },
    OpRow {
        tag: "flatten",
        schema: "FlattenOp",
        description: "`(C, H, W)` → `C·H·W`, channel-major.",
        fields: &[],
    },
    OpRow {
        tag: "batchnorm2d",
        schema: "Batchnorm2dOp",
        description: "Inference batch norm of a `[C, H, W]` value; every tensor is `[C]`; \
                      `eps` defaults to 1e-5.",
        fields: BATCHNORM,
    },
    OpRow {
        tag: "batchnorm1d",
        schema: "Batchnorm1dOp",
        description: "Inference batch norm of a flat value of `n` features; every tensor is \
                      `[n]`; `eps` defaults to 1e-5.",
        fields: BATCHNORM,
    },
    OpRow {
        tag: "add",
        schema: "AddOp",
        description: "The sum of the two values named in `inputs` (a residual connection); \
                      both must have the same shape.",
        fields: &[],
    },
    OpRow {
        tag: "global_avgpool",
        schema: "GlobalAvgpoolOp",
        description: "`(C, H, W)` → `C`: each channel's mean.",
        fields: &[],
    },
];

const BATCHNORM: &[(&str, Field, bool)] = &[
    ("weight", Field::Tensor, true),
    ("bias", Field::Tensor, true),
    ("running_mean", Field::Tensor, true),
    ("running_var", Field::Tensor, true),
    ("eps", Field::Epsilon, false),
];

fn field_schema(field: Field) -> RefOr<Schema> {
    match field {
        Field::Tensor => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A tensor name of the model (its safetensors key)"))
            .into(),
        Field::Count(min, max) => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(min as f64))
            .maximum(Some(max as f64))
            .into(),
        Field::PadMode => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("How `pad2d` fills the border"))
            .enum_values(Some(["replicate", "zero"]))
            .into(),
        Field::Epsilon => ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .exclusive_minimum(Some(0.0))
            .into(),
    }
}

/// The graph fields every op may carry (where it reads from, what later ops call it).
fn with_node_fields(object: ObjectBuilder) -> ObjectBuilder {
    let name = || ObjectBuilder::new().schema_type(Type::String);
    object
        .property(
            "name",
            name().description(Some(
                "How later ops refer to this op's output (unique; not `input`)",
            )),
        )
        .property(
            "input",
            name().description(Some(
                "The value a one-input op reads: an earlier op's `name`, or `input` (the \
                 network's input); default the previous op's output",
            )),
        )
        .property(
            "inputs",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(name())
                .min_items(Some(2))
                .max_items(Some(2))
                .description(Some("The two values an `add` reads (required by `add`)")),
        )
}

fn op_schema(row: &OpRow) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(row.description))
        .property(
            "op",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([row.tag])),
        )
        .required("op");
    object = with_node_fields(object);
    for &(name, field, required) in row.fields {
        object = object.property(name, field_schema(field));
        if required {
            object = object.required(name);
        }
    }
    object
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// One op of a network (tensors named by their safetensors keys), told apart by
/// `op`.
pub struct OpDoc;

impl PartialSchema for OpDoc {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "One op of a network (tensors named by their safetensors keys), told apart by \
             `op`.",
        ));
        for row in OPS {
            one_of = one_of.item(Ref::from_schema_name(row.schema));
        }
        let mapping = OPS
            .iter()
            .map(|r| (r.tag, format!("#/components/schemas/{}", r.schema)));
        one_of
            .discriminator(Some(Discriminator::with_mapping("op", mapping)))
            .into()
    }
}

impl ToSchema for OpDoc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Op")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for row in OPS {
            schemas.push((row.schema.to_string(), op_schema(row)));
        }
    }
}

/// A network: one sample's `[C, H, W]` and its ops in a topological order (by default an op
/// reads the previous op's output; the last op's output is the network's).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ArchSpec, example = json!({
    "name": "tiny-mlp",
    "input": [1, 28, 28],
    "ops": [
        {"op": "flatten"},
        {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
        {"op": "relu"},
        {"op": "linear", "weight": "fc2.weight", "bias": "fc2.bias"}
    ]
}))]
pub struct ArchSpecDoc {
    /// 1-64 characters of a-z, 0-9, `-`, `_`, `.`.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub name: String,
    /// One sample's `[C, H, W]`.
    #[schema(value_type = [u32; 3])]
    pub input: [usize; 3],
    #[schema(value_type = Vec<OpDoc>, min_items = 1, max_items = 512)]
    pub ops: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_of_the_presets_has_a_schema_row() {
        let tags: Vec<&str> = OPS.iter().map(|r| r.tag).collect();
        for spec in crate::engine::arch::presets() {
            for op in serde_json::to_value(&spec).unwrap()["ops"]
                .as_array()
                .unwrap()
            {
                let tag = op["op"].as_str().unwrap();
                assert!(tags.contains(&tag), "{tag} has no row in OPS");
            }
        }
    }
}
