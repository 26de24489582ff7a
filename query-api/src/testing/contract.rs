//! The API document as a checker of real answers: the typed client checks
//! every answer it reads against the document served at `/openapi.json`
//! (status documented for the operation, media type documented, JSON body
//! valid against the response schema, formats such as `date` asserted), so a
//! field added in a handler and not in the contract fails the test that met it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

pub struct Contract {
    doc: &'static Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The contract of this build (the document `/openapi.json` serves).
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        doc: crate::openapi_document(),
        validators: Mutex::new(HashMap::new()),
    })
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    pub fn document(&self) -> &'static Value {
        self.doc
    }

    /// The document's path template that `path` (without query) matches:
    /// literal segments equal, `{name}` segments anything.
    pub fn template(&self, path: &str) -> Option<&'static str> {
        let path = path.split('?').next().unwrap_or(path);
        let parts: Vec<&str> = path.split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        // a literal match wins over a template (`/v1/events/stream` is no `{id}`)
        if let Some((k, _)) = paths.get_key_value(path) {
            return Some(k.as_str());
        }
        paths.keys().map(String::as_str).find(|template| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == parts.len()
                && t.iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
        })
    }

    /// The JSON Schema of an answer: the operation's response for `status`,
    /// under `media`; an error if the document does not list it.
    pub fn response_schema(
        &self,
        method: &str,
        path: &str,
        status: u16,
        media: &str,
    ) -> Result<Option<(String, &'static Value)>, String> {
        let template = self
            .template(path)
            .ok_or_else(|| format!("{path} is not in the API document"))?;
        let op = &self.doc["paths"][template][method];
        if !op.is_object() {
            return Err(format!("{method} {template} is not in the API document"));
        }
        let response = &op["responses"][status.to_string()];
        if !response.is_object() {
            return Err(format!(
                "{method} {template}: status {status} is not documented"
            ));
        }
        let content = &response["content"];
        if media.is_empty() && content.is_null() {
            return Ok(None);
        }
        let schema = &content[media]["schema"];
        if !schema.is_object() {
            return Err(format!(
                "{method} {template} {status}: media type {media:?} is not documented (documented: {})",
                content
                    .as_object()
                    .map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ));
        }
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}/content/{}/schema",
            escape(template),
            escape(media)
        );
        Ok(Some((pointer, schema)))
    }

    fn validator(&self, pointer: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                // the schema with the document's components beside it, so that
                // its `#/components/schemas/...` references resolve
                let mut root = schema.clone();
                if let Some(map) = root.as_object_mut() {
                    map.insert("components".into(), self.doc["components"].clone());
                    map.insert(
                        "$schema".into(),
                        "https://json-schema.org/draft/2020-12/schema".into(),
                    );
                }
                Arc::new(
                    jsonschema::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{pointer} is not a valid JSON Schema: {e}")),
                )
            })
            .clone()
    }

    /// Checks one answer against the document.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Some((pointer, schema)) = self.response_schema(method, path, status, &media)? else {
            return Ok(());
        };
        if media != "application/json" {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{method} {path} {status}: the body is not JSON: {e}"))?;
        let validator = self.validator(&pointer, schema);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} {status} breaks the API document:\n  {}",
                errors.join("\n  ")
            ))
        }
    }

    /// [`Self::check`], panicking with the violations.
    pub fn assert(&self, method: &str, path: &str, status: u16, content_type: &str, body: &[u8]) {
        if let Err(e) = self.check(method, path, status, content_type, body) {
            panic!("{e}");
        }
    }
}
