//! A provider's section of `providers:` kept with its YAML positions until its `kind:`
//! picks the typed struct that reads it (`providers/<kind>/config.rs`).
//!
//! serde's internally tagged enums buffer values in a form that drops serde-saphyr's
//! spans, so the section is buffered here instead: every value as a [`Node`] with the
//! position it was read at. [`RawSection::read`] then deserializes the kind's struct
//! (`#[serde(deny_unknown_fields)]`, `Spanned<…>` fields) from that buffer, handing each
//! `Spanned<T>` the position recorded for it, so compile errors keep `file:line:col`.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};

/// The name serde-saphyr's `Spanned<T>` asks its deserializer for, and the first key of
/// the map it then expects (see serde-saphyr's `spanned.rs`).
const SPANNED_NAME: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// One buffered YAML value.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

/// The keys of one provider entry other than `kind`, in file order.
#[derive(Debug, Default)]
pub(crate) struct RawSection {
    pub entries: Vec<(Spanned<String>, Spanned<Node>)>,
}

/// Why a section did not fit its kind's struct, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SectionError {
    pub message: String,
    pub location: Option<Location>,
    /// Set for a key of the section itself (not a nested block) that the kind does not have.
    pub foreign_field: Option<Box<ForeignField>>,
}

/// A key the kind does not have: its name, the kind's fields, and where its value is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ForeignField {
    pub field: String,
    pub fields: &'static [&'static str],
    pub at: Location,
}

impl SectionError {
    /// Keeps the innermost position: the first one attached wins.
    fn at(mut self, location: Location) -> Self {
        self.location.get_or_insert(location);
        self
    }
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SectionError {}

/// The same wording as serde-saphyr's user messages, so an error reads alike wherever
/// in the file it is.
impl de::Error for SectionError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            location: None,
            foreign_field: None,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "unknown variant `{variant}`, expected one of {}",
            expected.join(", ")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut error = Self::custom(format!(
            "unknown field `{field}`, expected one of {}",
            expected.join(", ")
        ));
        error.foreign_field = Some(Box::new(ForeignField {
            field: field.to_owned(),
            fields: expected,
            at: Location::UNKNOWN,
        }));
        error
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing field `{field}`"))
    }
}

impl RawSection {
    /// Puts back the text of plain scalars that were read as numbers or booleans
    /// (`0x1F`, `1.50`, `True`), so that a `String` field gets exactly what was written,
    /// as it does when serde-saphyr reads it directly. `source` is the parsed document.
    pub fn keep_scalar_text(&mut self, source: &str) {
        for (_, value) in &mut self.entries {
            keep_text(value, source);
        }
    }

    /// Deserializes the kind's struct from the buffered section.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, SectionError> {
        T::deserialize(EntriesDe {
            entries: &self.entries,
            top: true,
        })
    }
}

fn keep_text(node: &mut Spanned<Node>, source: &str) {
    match &mut node.value {
        Node::Bool(_) | Node::Int(_) | Node::UInt(_) | Node::Float(_) => {
            let span = node.defined.span();
            let text = span
                .byte_offset()
                .zip(span.byte_len())
                .and_then(|(at, len)| {
                    let start = usize::try_from(at).ok()?;
                    let end = start.checked_add(usize::try_from(len).ok()?)?;
                    source.get(start..end)
                });
            if let Some(text) = text.filter(|text| !text.is_empty()) {
                node.value = Node::Str(text.to_owned());
            }
        }
        Node::Seq(items) => items.iter_mut().for_each(|item| keep_text(item, source)),
        Node::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, value)| keep_text(value, source)),
        Node::Null | Node::Str(_) => {}
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping's entries as a deserializer (the section itself, or a nested block).
struct EntriesDe<'a> {
    entries: &'a [(Spanned<String>, Spanned<Node>)],
    /// The section itself: an unknown key there is a field of another kind.
    top: bool,
}

impl<'de> Deserializer<'de> for EntriesDe<'_> {
    type Error = SectionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        visitor.visit_map(EntriesAccess {
            entries: self.entries.iter(),
            value: None,
            top: self.top,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct EntriesAccess<'a> {
    entries: std::slice::Iter<'a, (Spanned<String>, Spanned<Node>)>,
    value: Option<&'a Spanned<Node>>,
    top: bool,
}

impl<'de> MapAccess<'de> for EntriesAccess<'_> {
    type Error = SectionError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SectionError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let node = Spanned::new(Node::Str(key.value.clone()), key.referenced, key.defined);
        seed.deserialize(NodeDe(&node))
            .map(Some)
            .map_err(|mut error| {
                match (&mut error.foreign_field, self.top) {
                    (Some(foreign), true) => foreign.at = value.referenced,
                    (foreign, _) => *foreign = None,
                }
                error.at(key.referenced)
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SectionError> {
        match self.value.take() {
            Some(value) => seed.deserialize(NodeDe(value)),
            None => Err(de::Error::custom("a value was read before its key")),
        }
    }
}

/// One buffered value as a deserializer.
struct NodeDe<'a>(&'a Spanned<Node>);

impl NodeDe<'_> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match &self.0.value {
            Node::Null => de::Unexpected::Unit,
            Node::Bool(v) => de::Unexpected::Bool(*v),
            Node::Int(v) => de::Unexpected::Signed(*v),
            Node::UInt(v) => de::Unexpected::Unsigned(*v),
            Node::Float(v) => de::Unexpected::Float(*v),
            Node::Str(v) => de::Unexpected::Str(v),
            Node::Seq(_) => de::Unexpected::Seq,
            Node::Map(_) => de::Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = SectionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        let at = self.0.referenced;
        let result = match &self.0.value {
            Node::Null => visitor.visit_unit(),
            Node::Bool(v) => visitor.visit_bool(*v),
            Node::Int(v) => visitor.visit_i64(*v),
            Node::UInt(v) => visitor.visit_u64(*v),
            Node::Float(v) => visitor.visit_f64(*v),
            Node::Str(v) => visitor.visit_str(v),
            Node::Seq(items) => visitor.visit_seq(ItemsAccess(items.iter())),
            Node::Map(entries) => EntriesDe {
                entries,
                top: false,
            }
            .deserialize_any(visitor),
        };
        result.map_err(|error| error.at(at))
    }

    /// A YAML scalar read as text, as serde-saphyr does for `String` fields.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        let at = self.0.referenced;
        let text = match &self.0.value {
            Node::Str(v) => return visitor.visit_str(v).map_err(|e: SectionError| e.at(at)),
            Node::Bool(v) => v.to_string(),
            Node::Int(v) => v.to_string(),
            Node::UInt(v) => v.to_string(),
            Node::Float(v) => v.to_string(),
            Node::Null | Node::Seq(_) | Node::Map(_) => {
                let error: SectionError = de::Error::invalid_type(self.unexpected(), &visitor);
                return Err(error.at(at));
            }
        };
        visitor
            .visit_string(text)
            .map_err(|e: SectionError| e.at(at))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        match self.0.value {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SectionError> {
        match name {
            SPANNED_NAME => visitor.visit_newtype_struct(SpannedDe(self.0)),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SectionError> {
        let at = self.0.referenced;
        match &self.0.value {
            Node::Str(word) => {
                let word: de::value::StrDeserializer<'_, SectionError> =
                    word.as_str().into_deserializer();
                visitor.visit_enum(word).map_err(|e| e.at(at))
            }
            _ => {
                let error: SectionError = de::Error::invalid_type(self.unexpected(), &visitor);
                Err(error.at(at))
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, SectionError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier
    }
}

struct ItemsAccess<'a>(std::slice::Iter<'a, Spanned<Node>>);

impl<'de> SeqAccess<'de> for ItemsAccess<'_> {
    type Error = SectionError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SectionError> {
        self.0
            .next()
            .map(|item| seed.deserialize(NodeDe(item)))
            .transpose()
    }
}

/// A value asked for as `Spanned<T>`: the map serde-saphyr's own deserializer would give
/// (`marker`, `value`, `referenced`, `defined`), with the recorded positions.
struct SpannedDe<'a>(&'a Spanned<Node>);

impl<'de> Deserializer<'de> for SpannedDe<'_> {
    type Error = SectionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SectionError> {
        visitor.visit_map(SpannedAccess {
            node: self.0,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpannedAccess<'a> {
    node: &'a Spanned<Node>,
    next: usize,
}

const SPANNED_KEYS: [&str; 4] = [SPANNED_MARKER, "value", "referenced", "defined"];

impl<'de> MapAccess<'de> for SpannedAccess<'_> {
    type Error = SectionError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SectionError> {
        let Some(key) = SPANNED_KEYS.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SectionError> {
        let location = |at: Location| {
            de::value::MapDeserializer::new(
                [("line", at.line()), ("column", at.column())].into_iter(),
            )
        };
        match self.next {
            1 => seed.deserialize(true.into_deserializer()),
            2 => seed.deserialize(NodeDe(self.node)),
            3 => seed.deserialize(location(self.node.referenced)),
            _ => seed.deserialize(location(self.node.defined)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        name: Option<Spanned<String>>,
        port: Option<Spanned<String>>,
        nested: Option<Spanned<Nested>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        mode: Spanned<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
    }

    fn section(yaml: &str) -> RawSection {
        let node: Result<Spanned<Node>, _> = serde_saphyr::from_str(yaml);
        match node.map(|n| n.value) {
            Ok(Node::Map(entries)) => RawSection { entries },
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn spans_survive_the_buffer() {
        let read: Result<Example, _> =
            section("name: a\nport: 8080\nnested: {mode: fast}\n").read();
        let example = read.ok();
        let name = example.as_ref().and_then(|e| e.name.as_ref());
        assert_eq!(
            name.map(|n| (n.value.as_str(), n.referenced.line())),
            Some(("a", 1))
        );
        let port = example.as_ref().and_then(|e| e.port.as_ref());
        assert_eq!(
            port.map(|p| (p.value.as_str(), p.referenced.line(), p.referenced.column())),
            Some(("8080", 2, 7))
        );
        let mode = example.and_then(|e| e.nested).map(|n| n.value.mode);
        assert_eq!(
            mode.map(|m| (m.value, m.referenced.column())),
            Some((Mode::Fast, 16))
        );
    }

    #[test]
    fn plain_scalars_keep_their_text() {
        let yaml = "name: 0x1F\nport: 1.50\nnested: {mode: fast}\n";
        let mut raw = section(yaml);
        raw.keep_scalar_text(yaml);
        let example = raw.read::<Example>().ok();
        let name = example
            .as_ref()
            .and_then(|e| e.name.as_ref())
            .map(|n| n.value.clone());
        let port = example.and_then(|e| e.port).map(|p| p.value);
        assert_eq!(
            (name.as_deref(), port.as_deref()),
            (Some("0x1F"), Some("1.50"))
        );
    }

    #[test]
    fn a_foreign_key_points_at_its_value_and_a_nested_one_at_its_key() {
        let err = section("name: a\n  \nporty: x\n").read::<Example>().err();
        let foreign = err.and_then(|e| e.foreign_field);
        assert_eq!(
            foreign.map(|f| (f.field, f.at.line(), f.at.column())),
            Some(("porty".to_owned(), 3, 8))
        );
        let err = section("nested: {mode: slow}\n").read::<Example>().err();
        let err = err.unwrap_or_else(|| <SectionError as de::Error>::custom("none"));
        assert_eq!(err.message, "unknown variant `slow`, expected one of fast");
        assert_eq!(err.location.map(|l| l.column()), Some(16));
        let err = section("nested: {mood: x}\n").read::<Example>().err();
        let err = err.unwrap_or_else(|| <SectionError as de::Error>::custom("none"));
        assert!(err.foreign_field.is_none());
        assert_eq!(err.location.map(|l| l.column()), Some(10));
    }
}
