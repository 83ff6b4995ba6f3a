//! A JSON object whose member names are unique: the JOSE header and the
//! claims set of a token are read through it, so a token that names a member
//! twice (`{"sub":"alice","sub":"admin"}`) is refused instead of one reader
//! taking the first value and another the last (RFC 7515 §4, RFC 7519 §4
//! allow either refusing or keeping the last; refusing leaves the back end
//! nothing to read differently).

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The members of a JSON object that names each member once.
#[derive(Debug, Default)]
pub struct UniqueObject(pub Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = UniqueObject;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object with unique member names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
        let mut map = Map::new();
        while let Some((name, value)) = access.next_entry::<String, Value>()? {
            if map.contains_key(&name) {
                return Err(A::Error::custom(format!("member `{name}` appears twice")));
            }
            map.insert(name, value);
        }
        Ok(UniqueObject(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Unique members parse; a repeated member or a non-object is refused.
    #[test]
    fn duplicates_refused() {
        let parse = |t: &str| serde_json::from_str::<UniqueObject>(t).map(|o| o.0.len());
        assert_eq!(parse(r#"{"a":1,"b":{"c":1,"c":2}}"#).ok(), Some(2));
        assert!(parse(r#"{"sub":"alice","sub":"admin"}"#).is_err());
        assert!(parse(r#"["a"]"#).is_err());
    }
}
