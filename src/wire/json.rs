//! Encounters as JSON documents: one object, an array of objects, or JSON lines (any
//! sequence of objects separated by white space). The canonical proto3 JSON mapping applies:
//! lowerCamelCase or snake_case names, enum names, int64 as string or number, unknown fields
//! ignored.

use crate::proto::v1 as pb;

/// A document that could not be read as encounters, with the position serde_json reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonInputError {
    #[error("no JSON value (the input is empty)")]
    Empty,
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

impl JsonInputError {
    fn from_serde(error: &serde_json::Error) -> JsonInputError {
        // serde_json's message ends with " at line L column C"; keep the message alone.
        let text = error.to_string();
        let message = match text.rfind(" at line ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        };
        JsonInputError::Syntax {
            line: error.line(),
            column: error.column(),
            message,
        }
    }
}

/// Parses every encounter of a document. An empty array is `Ok(vec![])`.
pub fn parse_encounters(text: &str) -> Result<Vec<pb::Encounter>, JsonInputError> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(JsonInputError::Empty);
    }
    if trimmed.starts_with('[') {
        return serde_json::from_str::<Vec<pb::Encounter>>(text)
            .map_err(|error| JsonInputError::from_serde(&error));
    }
    serde_json::Deserializer::from_str(text)
        .into_iter::<pb::Encounter>()
        .map(|item| item.map_err(|error| JsonInputError::from_serde(&error)))
        .collect()
}

/// Decodes one encounter from a JSON message body (NATS, HTTP).
pub fn decode_encounter(bytes: &[u8]) -> Result<pb::Encounter, JsonInputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonInputError::Empty);
    }
    // One UTF-8 check of the whole body: `from_slice` checks every string on its own, which
    // costs more than the check itself for the many short strings of an encounter.
    let text = std::str::from_utf8(bytes).map_err(|error| invalid_utf8(bytes, &error))?;
    serde_json::from_str(text).map_err(|error| JsonInputError::from_serde(&error))
}

/// The position of the first byte that is not UTF-8, as line and column like serde_json's.
fn invalid_utf8(bytes: &[u8], error: &std::str::Utf8Error) -> JsonInputError {
    let valid = &bytes[..error.valid_up_to()];
    let line_start = valid
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    JsonInputError::Syntax {
        line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        column: valid.len() - line_start + 1,
        message: "invalid UTF-8".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_array_and_json_lines() {
        let one = r#"{"encounterId":"a"}"#;
        let array = r#"[{"encounterId":"a"},{"encounter_id":"b"}]"#;
        let lines = "{\"encounterId\":\"a\"}\n{\"encounterId\":\"b\"}\n";
        assert_eq!(parse_encounters(one).unwrap().len(), 1);
        assert_eq!(parse_encounters(array).unwrap()[1].encounter_id, "b");
        assert_eq!(parse_encounters(lines).unwrap().len(), 2);
        assert_eq!(parse_encounters(" [ ] ").unwrap(), vec![]);
        assert_eq!(parse_encounters("  \n"), Err(JsonInputError::Empty));
    }

    #[test]
    fn errors_name_line_and_column() {
        let error = parse_encounters("{\"encounterId\":\"a\"}\n{\"encounterId\": 7}").unwrap_err();
        match error {
            JsonInputError::Syntax { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_encounters("{\"encounterId\":"),
            Err(JsonInputError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_placed_by_line_and_column() {
        let body = b"{\"encounterId\":\"a\",\n \"patientId\":\"\xff\"}";
        assert_eq!(
            decode_encounter(body),
            Err(JsonInputError::Syntax {
                line: 2,
                column: 15,
                message: "invalid UTF-8".to_owned()
            })
        );
        assert_eq!(
            decode_encounter(b"{\"encounterId\":\"a\"}")
                .unwrap()
                .encounter_id,
            "a"
        );
    }

    #[test]
    fn canonical_mapping_details() {
        let text = r#"{"encounter_id":"x","serviceLines":[{"procedureCode":"97124","chargeCents":"4500"},{"charge_cents":4500}],
            "payer":{"kind":"PAYER_KIND_MEDICARE"},"unknownField":{"nested":true}}"#;
        let encounter = &parse_encounters(text).unwrap()[0];
        assert_eq!(encounter.service_lines[0].charge_cents, 4500);
        assert_eq!(encounter.service_lines[1].charge_cents, 4500);
        assert_eq!(
            encounter.payer.as_ref().unwrap().kind,
            pb::PayerKind::Medicare as i32
        );
    }
}
