//! The JSON journal (`--report FILE.json`): the [`RunReport`] as pretty JSON, with a playbook's
//! records as one object whose keys keep the order the playbook wrote them in.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RunReport;

/// The journal as pretty JSON, ending with a newline.
pub fn render(run: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(run).unwrap_or_else(|e| {
        // Every field is plain data; a failure here is a bug, said in the file itself.
        format!("{{\"schema\": \"{}\", \"error\": \"{e}\"}}", super::SCHEMA)
    });
    text.push('\n');
    text
}

/// `record(key, value)` pairs in first-write order; JSON: an object `{"key": value, ...}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records(pub Vec<(String, serde_json::Value)>);

impl Records {
    /// The value recorded under `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Records {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Records;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of records")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Records, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(Records(out))
            }
        }
        d.deserialize_map(Ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_order_through_json() {
        let r = Records(vec![
            ("zeta".into(), serde_json::json!(1)),
            ("alpha".into(), serde_json::json!({"p99": 2.5})),
        ]);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"zeta":1,"alpha":{"p99":2.5}}"#);
        let back: Records = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
