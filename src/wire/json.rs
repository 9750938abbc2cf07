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
    // costs more than the check itself for the many short strings of an encounter. A body
    // that is not UTF-8 goes to `from_slice` as before: it skips unknown fields unchecked,
    // and its errors name the first problem in document order.
    let decoded = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    decoded.map_err(|error| JsonInputError::from_serde(&error))
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
    fn bodies_that_are_not_utf8_are_read_as_serde_json_reads_them() {
        // In a field the contract knows: refused where the byte is.
        let body = b"{\"encounterId\":\"a\",\n \"patientId\":\"\xff\"}";
        assert_eq!(
            decode_encounter(body),
            Err(JsonInputError::Syntax {
                line: 2,
                column: 15,
                message: "invalid unicode code point".to_owned()
            })
        );
        // In an unknown field: ignored, like the rest of the field.
        let body = b"{\"encounterId\":\"a\",\"note\":\"\xff\"}";
        assert_eq!(decode_encounter(body).unwrap().encounter_id, "a");
    }

    /// The generated code reads numbers through `proto::NumberDeserialize` (build.rs), whose
    /// errors name the value and the type; pbjson's said "did not match any variant".
    #[test]
    fn number_fields_go_through_claimlints_reader() {
        let body = br#"{"encounterId":"a","serviceLines":[{"units":-1}]}"#;
        match decode_encounter(body) {
            Err(JsonInputError::Syntax { message, .. }) => {
                assert_eq!(message, "invalid value: integer `-1`, expected u32")
            }
            other => panic!("unexpected {other:?}"),
        }
        let body = br#"{"encounterId":"a","serviceLines":[{"units":"2","chargeCents":4500}]}"#;
        let line = &decode_encounter(body).unwrap().service_lines[0];
        assert_eq!((line.units, line.charge_cents), (2, 4500));
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
