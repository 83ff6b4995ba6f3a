//! Every key a config type accepts, found from the type itself: a walker
//! deserializer answers every struct with all of its fields (serde hands each
//! struct's field list to the deserializer), every list with one element and
//! every option with a value, and records the dotted path of each value that
//! is not a table (lists marked `[]`: `listeners[].tls.certificates[].cert`).

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeSet;

/// What a walk found: the leaf keys, the keys whose type would not say what
/// it is (`deserialize_any`: an untagged enum) and so are left out of the
/// next walk.
#[derive(Default)]
pub struct Found {
    pub leaves: BTreeSet<String>,
    pub opaque: BTreeSet<String>,
}

/// Every key `T` accepts, as dotted paths under `root`, and the opaque ones.
pub fn keys_of<T: for<'de> Deserialize<'de>>(root: &str) -> Found {
    let found = RefCell::new(Found::default());
    // Each failed walk leaves one more opaque key out; a walk that fails
    // without finding a new one is a walker bug.
    for _ in 0..32 {
        let before = found.borrow().opaque.len();
        let walker = Walker {
            path: root.to_string(),
            found: &found,
            structs: Vec::new(),
            quiet: false,
        };
        match T::deserialize(walker) {
            Ok(_) => return found.into_inner(),
            Err(e) => assert!(found.borrow().opaque.len() > before, "walk failed: {e}"),
        }
    }
    panic!("too many opaque keys");
}

#[derive(Debug)]
struct WalkError(String);

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalkError {}

impl de::Error for WalkError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        WalkError(msg.to_string())
    }
}

struct Walker<'a> {
    path: String,
    found: &'a RefCell<Found>,
    /// The structs this value is inside of, outermost first.
    structs: Vec<&'static str>,
    /// Inside a struct that contains itself (a dynamic back end's case holds
    /// a back end): its key is one leaf, its inside is walked once, silently,
    /// with every optional key absent so that the walk ends.
    quiet: bool,
}

impl<'a> Walker<'a> {
    fn leaf(&self) {
        if !self.quiet {
            self.found.borrow_mut().leaves.insert(self.path.clone());
        }
    }

    fn child(&self, name: &str) -> Walker<'a> {
        Walker {
            path: if self.path.is_empty() {
                name.to_string()
            } else {
                format!("{}.{name}", self.path)
            },
            found: self.found,
            structs: self.structs.clone(),
            quiet: self.quiet,
        }
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
            self.leaf();
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Walker<'_> {
    type Error = WalkError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, WalkError> {
        self.leaf();
        self.found.borrow_mut().opaque.insert(self.path.clone());
        Err(WalkError(format!("`{}` does not say its type", self.path)))
    }

    leaf! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(1),
        deserialize_i16 => visit_i64(1),
        deserialize_i32 => visit_i64(1),
        deserialize_i64 => visit_i64(1),
        deserialize_u8 => visit_u64(1),
        deserialize_u16 => visit_u64(1),
        deserialize_u32 => visit_u64(1),
        deserialize_u64 => visit_u64(1),
        deserialize_f32 => visit_f64(1.0),
        deserialize_f64 => visit_f64(1.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str("x"),
        deserialize_string => visit_str("x"),
        deserialize_bytes => visit_bytes(b"x"),
        deserialize_byte_buf => visit_bytes(b"x"),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str("x"),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        if self.quiet {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        let element = Walker {
            path: format!("{}[]", self.path),
            found: self.found,
            structs: self.structs.clone(),
            quiet: self.quiet,
        };
        visitor.visit_seq(OneElement(Some(element)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_seq(visitor)
    }

    /// A map with names chosen by the operator (`headers`): one key, no walk inside.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        self.leaf();
        visitor.visit_map(Fields {
            fields: Vec::new(),
            parent: self,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        if self.structs.contains(&name) {
            self.leaf();
            self.quiet = true;
        }
        self.structs.push(name);
        let opaque = self.found.borrow().opaque.clone();
        let fields = fields
            .iter()
            .copied()
            .filter(|f| !opaque.contains(&self.child(f).path))
            .collect();
        visitor.visit_map(Fields {
            fields,
            parent: self,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.leaf();
        let variant = variants.first().copied().unwrap_or("x");
        visitor.visit_enum(FirstVariant {
            variant,
            walker: self,
        })
    }
}

/// A struct's fields, each with a walker for its value.
struct Fields<'a> {
    fields: Vec<&'static str>,
    parent: Walker<'a>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = WalkError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WalkError> {
        match self.fields.first() {
            Some(name) => seed.deserialize(name.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, WalkError> {
        let name = self.fields.remove(0);
        seed.deserialize(self.parent.child(name))
    }
}

struct OneElement<'a>(Option<Walker<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = WalkError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, WalkError> {
        self.0.take().map(|w| seed.deserialize(w)).transpose()
    }
}

struct FirstVariant<'a> {
    variant: &'static str,
    walker: Walker<'a>,
}

impl<'de, 'a> EnumAccess<'de> for FirstVariant<'a> {
    type Error = WalkError;
    type Variant = Walker<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Walker<'a>), WalkError> {
        let value = seed.deserialize(self.variant.into_deserializer())?;
        Ok((value, self.walker))
    }
}

impl<'de> VariantAccess<'de> for Walker<'_> {
    type Error = WalkError;

    fn unit_variant(self) -> Result<(), WalkError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, WalkError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_struct("", fields, visitor)
    }
}
