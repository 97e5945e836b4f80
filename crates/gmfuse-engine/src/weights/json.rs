//! The safetensors header as a JSON tree that keeps duplicates: [`Node`]'s objects keep every
//! entry in file order (`serde_json::Value`, like the `safetensors` crate, keeps only the last of
//! two equal keys), and parsing counts every value against [`MAX_HEADER_VALUES`], so the tree
//! stays small whatever the header's text looks like.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Most JSON values (objects, arrays, strings, numbers… at any depth) one header may hold:
/// bounds the parsed tree (about 80 bytes a value) whatever the header's text looks like.
pub const MAX_HEADER_VALUES: usize = 1 << 19;

/// A JSON value whose objects keep every entry, duplicates included, in file order.
#[derive(Debug)]
pub(super) enum Node {
    Null,
    Bool,
    UInt(u64),
    Int,
    Float,
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Parse `text`, which must hold one JSON value and nothing else.
    pub(super) fn parse(text: &str) -> Result<Node, serde_json::Error> {
        let budget = Cell::new(MAX_HEADER_VALUES);
        let mut json = serde_json::Deserializer::from_str(text);
        let root = de::DeserializeSeed::deserialize(NodeSeed(&budget), &mut json)?;
        json.end()?;
        Ok(root)
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool => "a boolean",
            Node::UInt(_) => "an unsigned integer",
            Node::Int => "a negative integer",
            Node::Float => "a non-integer number",
            Node::Str(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }
}

/// Deserializes a [`Node`], counting every value against a shared budget.
#[derive(Clone, Copy)]
struct NodeSeed<'b>(&'b Cell<usize>);

impl<'de> de::DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        match self.0.get().checked_sub(1) {
            Some(left) => self.0.set(left),
            None => {
                return Err(de::Error::custom(format!(
                    "the header holds more than {MAX_HEADER_VALUES} JSON values"
                )));
            }
        }
        deserializer.deserialize_any(NodeVisitor(self.0))
    }
}

struct NodeVisitor<'b>(&'b Cell<usize>);

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Bool)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Int, Node::UInt))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed(self.0))? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(NodeSeed(self.0))?;
            fields.push((key, value));
        }
        Ok(Node::Object(fields))
    }
}
