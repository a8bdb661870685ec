//! The OpenAPI 3.1 document of the HTTP API, served at
//! `/api/v1/openapi.json`: `openapi.json` beside this file.
//!
//! The paths, parameters, request bodies and error answers are written by
//! hand. The schemas of the `census.v1` messages the API answers with are
//! derived from the `.proto` files by the test
//! `message_schemas_follow_the_proto` (as serde serialises prost types:
//! proto field names, every field present, unset messages and optional
//! scalars `null`, 64-bit integers as JSON numbers): when a message
//! changes, that test fails; `CENSUS_BLESS=1 cargo test -p census-collector
//! message_schemas_follow_the_proto` rewrites the file, and the diff shows
//! what changed. The e2e test `tests/tests/http_api.rs` validates real
//! answers against these schemas.

pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use protox::prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
    use serde_json::{Value, json};

    use super::DOCUMENT;
    use crate::http_api::routes::ROUTES;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    #[test]
    fn the_document_describes_exactly_the_routes_served() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                documented.insert((method.clone(), path.clone()));
                let role = operation["x-census-role"].as_str().unwrap_or_else(|| panic!("{method} {path}: x-census-role"));
                assert!(["none", "viewer", "operator", "admin"].contains(&role), "{method} {path}: role {role}");
                assert!(operation["responses"]["200"].is_object(), "{method} {path}: the 200 answer");
                assert!(operation["operationId"].is_string() && operation["summary"].is_string(), "{method} {path}");
                let placeholders: BTreeSet<&str> =
                    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
                let in_path: BTreeSet<&str> = operation["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(placeholders, in_path, "{method} {path}: every path parameter is described");
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.verb.as_str().to_string(), r.path.to_string())).collect();
        assert_eq!(documented, served, "openapi.json and routes::ROUTES list the same operations");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r}: only local references"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn query_parameters_match_what_the_routes_accept() {
        let doc = document();
        for r in ROUTES {
            let operation = &doc["paths"][r.path][r.verb.as_str()];
            let documented: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            let accepted: BTreeSet<&str> = super::super::routes::query_parameter_names(r.endpoint).iter().copied().collect();
            assert_eq!(documented, accepted, "{} {}", r.verb.as_str(), r.path);
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    fn proto_pool() -> DescriptorPool {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/proto");
        let files = ["census/v1/inventory.proto", "census/v1/agent.proto", "census/v1/admin.proto"];
        let fds = protox::compile(files, [dir]).expect("the census.v1 protos compile");
        DescriptorPool::from_file_descriptor_set(fds).expect("a descriptor pool")
    }

    /// The leading comment of a message or field, on one line.
    fn comment(file: &protox::prost_reflect::prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
        let location = file.source_code_info.as_ref()?.location.iter().find(|l| l.path == path)?;
        let text = location.leading_comments.as_deref()?.split_whitespace().collect::<Vec<_>>().join(" ");
        (!text.is_empty()).then_some(text)
    }

    fn message_ref(m: &MessageDescriptor) -> Value {
        json!({ "$ref": format!("#/components/schemas/{}", m.name()) })
    }

    /// The schema of one value of a field (an item, for lists and maps).
    fn value_schema(kind: &Kind, field: &str) -> Value {
        match kind {
            Kind::String => json!({ "type": "string" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({ "type": "integer" }),
            Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => json!({ "type": "integer", "minimum": 0 }),
            // serde_json writes a NaN or an infinity as null.
            Kind::Double | Kind::Float => json!({ "type": ["number", "null"] }),
            Kind::Message(m) => message_ref(m),
            Kind::Bytes | Kind::Enum(_) => {
                panic!("{field}: bytes and enums are not in the API's answers yet; teach this generator their serde form")
            }
        }
    }

    fn field_schema(field: &FieldDescriptor) -> Value {
        assert!(
            field.containing_oneof().is_none_or(|o| o.is_synthetic()),
            "{}: oneofs serialise as externally tagged enums; teach this generator their form",
            field.full_name()
        );
        let mut schema = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("a map field's kind is its entry message") };
            json!({ "type": "object", "additionalProperties": value_schema(&entry.map_entry_value_field().kind(), field.full_name()) })
        } else if field.is_list() {
            json!({ "type": "array", "items": value_schema(&field.kind(), field.full_name()) })
        } else if field.supports_presence() {
            // An unset message field or proto3 `optional` scalar is None: null.
            match value_schema(&field.kind(), field.full_name()) {
                r @ Value::Object(_) if r.get("$ref").is_some() => json!({ "anyOf": [r, { "type": "null" }] }),
                Value::Object(mut s) => {
                    let ty = match s.remove("type") {
                        Some(Value::Array(mut types)) => {
                            if !types.contains(&json!("null")) {
                                types.push(json!("null"));
                            }
                            Value::Array(types)
                        }
                        Some(t) => json!([t, "null"]),
                        None => unreachable!("scalar schemas have a type"),
                    };
                    s.insert("type".into(), ty);
                    Value::Object(s)
                }
                other => other,
            }
        } else {
            value_schema(&field.kind(), field.full_name())
        };
        if let Some(text) = comment(field.parent_file().file_descriptor_proto(), field.path()) {
            schema.as_object_mut().expect("schemas are objects").insert("description".into(), Value::String(text));
        }
        schema
    }

    fn message_schema(m: &MessageDescriptor) -> Value {
        let properties: serde_json::Map<String, Value> = m.fields().map(|f| (f.name().to_string(), field_schema(&f))).collect();
        let required: Vec<Value> = m.fields().map(|f| Value::String(f.name().to_string())).collect();
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        let description = comment(m.parent_file().file_descriptor_proto(), m.path()).unwrap_or_else(|| format!("`{}`", m.full_name()));
        schema["description"] = Value::String(description);
        schema
    }

    /// Schemas of `roots` and every message they contain, by message name.
    fn schemas_from(pool: &DescriptorPool, roots: &BTreeSet<String>) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut todo: Vec<MessageDescriptor> = roots
            .iter()
            .map(|r| pool.get_message_by_name(&format!("census.v1.{r}")).unwrap_or_else(|| panic!("no message census.v1.{r}")))
            .collect();
        while let Some(m) = todo.pop() {
            if out.contains_key(m.name()) {
                continue;
            }
            for f in m.fields() {
                let kind = if f.is_map() {
                    let Kind::Message(entry) = f.kind() else { unreachable!("a map field's kind is its entry message") };
                    entry.map_entry_value_field().kind()
                } else {
                    f.kind()
                };
                if let Kind::Message(inner) = kind {
                    todo.push(inner);
                }
            }
            out.insert(m.name().to_string(), message_schema(&m));
        }
        out
    }

    #[test]
    fn message_schemas_follow_the_proto() {
        let pool = proto_pool();
        let mut doc = document();
        // Roots: the messages the operations answer with.
        let mut roots = BTreeSet::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("path item").values() {
                if let Some(r) = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = r.rsplit('/').next().expect("a name");
                    if pool.get_message_by_name(&format!("census.v1.{name}")).is_some() {
                        roots.insert(name.to_string());
                    }
                }
            }
        }
        assert!(roots.contains("GetHostResponse") && roots.contains("ListAlertsResponse"), "{roots:?}");
        let generated = schemas_from(&pool, &roots);
        let schemas = doc["components"]["schemas"].as_object_mut().expect("components.schemas");
        let is_proto = |name: &str| pool.get_message_by_name(&format!("census.v1.{name}")).is_some();
        let stale: Vec<String> = schemas.keys().filter(|k| is_proto(k) && !generated.contains_key(*k)).cloned().collect();
        let differing: Vec<String> = generated.iter().filter(|(k, v)| schemas.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
        if stale.is_empty() && differing.is_empty() {
            return;
        }
        if std::env::var_os("CENSUS_BLESS").is_some() {
            for k in &stale {
                schemas.remove(k);
            }
            schemas.extend(generated);
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http_api/openapi.json");
            let text = serde_json::to_string_pretty(&doc).expect("serialise") + "\n";
            std::fs::write(path, text).expect("rewrite openapi.json");
            return;
        }
        panic!(
            "openapi.json's message schemas differ from the proto (changed: {differing:?}, no longer answered: {stale:?}); \
             rerun with CENSUS_BLESS=1 to rewrite them and review the diff"
        );
    }
}
