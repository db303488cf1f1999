//! The OpenAPI document enforced at the door: every JSON body is checked
//! against its operation's schema in `/api/v1/openapi.json` before a handler
//! sees it, so what the document says a body is, is exactly what the service
//! takes. `serde` alone is more lenient than the document (it reads a struct
//! from an array, ignores fields the document forbids nowhere), and a
//! client generated from the document must never meet a difference.
//!
//! The schemas come from the document itself (built once, from the types'
//! derives), read by `jsonschema` under JSON Schema 2020-12, the dialect of
//! OpenAPI 3.1. A body that does not fit is a 422 listing every problem,
//! each in a sentence at a path into the body (`calls[2].external_number`).
//!
//! Rules the document cannot say (a group that must exist, a flow's
//! reachability) are the handlers' own checks, after this one.

use crate::error::{ApiError, FieldProblem};
use axum::http::Method;
use earshot_api::rules;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;

/// The body schema of each operation that takes a JSON body, by route
/// (`/api/v1/users/{id}`, as axum's `MatchedPath` names it) and method.
static BODIES: LazyLock<HashMap<String, HashMap<Method, Validator>>> =
    LazyLock::new(|| bodies(&super::document()));

fn bodies(document: &Value) -> HashMap<String, HashMap<Method, Validator>> {
    let components = document.get("components").cloned().unwrap_or(Value::Null);
    let mut validators = HashMap::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let Some(Value::Object(schema)) =
                operation.pointer("/requestBody/content/application~1json/schema").cloned()
            else {
                continue;
            };
            let mut schema = schema;
            // `$ref`s point into the document's components: carry them along.
            schema.insert("components".into(), components.clone());
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&Value::Object(schema))
                .unwrap_or_else(|e| panic!("the body schema of {method} {path} compiles: {e}"));
            validators.entry(path.clone()).or_insert_with(HashMap::new).insert(method, validator);
        }
    }
    validators
}

/// Checks `body` against the schema of `method route`; operations without
/// a JSON body schema take anything `serde` reads.
pub fn check_body(method: &Method, route: &str, body: &Value) -> Result<(), ApiError> {
    let Some(validator) = BODIES.get(route).and_then(|methods| methods.get(method)) else { return Ok(()) };
    let mut problems = Vec::new();
    for error in validator.iter_errors(body) {
        explain(&error, &mut problems);
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.dedup();
    let first = &problems[0];
    let detail = if problems.len() == 1 {
        format!("{}: {}", first.field, first.problem)
    } else {
        format!(
            "{}: {} (and {} more problems; see `problems`)",
            first.field,
            first.problem,
            problems.len() - 1
        )
    };
    Err(ApiError::invalid(detail, problems))
}

/// Writes whole numbers written with a fraction (`586.0`) as integers, as
/// JSON Schema reads them (an `integer` is any number without a fractional
/// part) and `serde` does not (it reads `586.0` into no integer type).
/// Fractions stay floats; an integer is read by `serde` into a float field as well.
pub fn integers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Exact below 2^53: the cast loses nothing.
                #[allow(clippy::cast_possible_truncation)]
                let whole = float as i64;
                *value = Value::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integers_as_integers),
        _ => {}
    }
}

/// `/calls/0/external_number` as `calls[0].external_number`; the root as `body`.
fn field(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() { "body".to_owned() } else { out }
}

fn child(parent: &str, name: &str) -> String {
    if parent == "body" { name.to_owned() } else { format!("{parent}.{name}") }
}

/// What a pattern of `rules` asks, in words.
fn pattern_problem(pattern: &str) -> String {
    match pattern {
        rules::E164 => "is not an E.164 number (like +442071234567)".to_owned(),
        rules::EMAIL => "is not an e-mail address".to_owned(),
        rules::NAME => "must not be empty".to_owned(),
        rules::EXTENSION => "must be 2 to 8 digits".to_owned(),
        earshot_policy::KEY_PATTERN => "is not a keypad key (0-9, *, #, A-D)".to_owned(),
        other => format!("must match {other}"),
    }
}

fn a_type(name: &str) -> &'static str {
    match name {
        "null" => "null",
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "an object",
        _ => "a value of another type",
    }
}

/// Pushes what `error` says, as problems a person can act on.
fn explain(error: &ValidationError<'_>, problems: &mut Vec<FieldProblem>) {
    let at = field(&error.instance_path().to_string());
    let mut push = |field: String, problem: String| problems.push(FieldProblem { field, problem });
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            push(child(&at, property.as_str().unwrap_or_default()), "is required".into());
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                push(child(&at, name), "is not a field here".into());
            }
        }
        ValidationErrorKind::Type { kind } => {
            let names: Vec<&str> = match kind {
                jsonschema::error::TypeKind::Single(one) => vec![a_type(one.as_str())],
                jsonschema::error::TypeKind::Multiple(set) => {
                    set.iter().map(|t| a_type(t.as_str())).collect()
                }
            };
            push(at, format!("must be {}", names.join(" or ")));
        }
        ValidationErrorKind::Pattern { pattern } => push(at, pattern_problem(pattern)),
        ValidationErrorKind::MinLength { limit: 1 } => push(at, "must not be empty".into()),
        ValidationErrorKind::MinLength { limit } => {
            push(at, format!("must have at least {limit} characters"));
        }
        ValidationErrorKind::MaxLength { limit } => push(at, format!("must have at most {limit} characters")),
        ValidationErrorKind::Minimum { limit } => push(at, format!("must be at least {limit}")),
        ValidationErrorKind::Maximum { limit } => push(at, format!("must be at most {limit}")),
        ValidationErrorKind::MinItems { limit } => push(at, format!("must hold at least {limit}")),
        ValidationErrorKind::MaxItems { limit } => push(at, format!("must hold at most {limit}")),
        ValidationErrorKind::MinProperties { limit } => {
            push(at, format!("must have at least {limit} entries"));
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
                .collect();
            push(at, format!("must be one of: {}", names.join(", ")));
        }
        ValidationErrorKind::PropertyNames { error } => {
            let name = error.instance().as_str().unwrap_or_default().to_owned();
            let mut inner = Vec::new();
            explain(error, &mut inner);
            let why = inner.first().map_or_else(|| "is not allowed".to_owned(), |p| p.problem.clone());
            push(child(&at, &name), format!("the key {why}"));
        }
        // A union (a step's kinds, a value or null): the branch the body
        // came closest to says what is wrong with it.
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            match closest(context) {
                Some(branch) => {
                    for error in branch {
                        explain(error, problems);
                    }
                }
                None => push(at, "is none of the shapes allowed here".into()),
            }
        }
        _ => push(at, error.to_string()),
    }
}

/// The branch of a union whose errors are deepest and fewest: the one whose
/// type (and tag) the body took, so its errors are about its fields.
fn closest<'a>(context: &'a [Vec<ValidationError<'static>>]) -> Option<&'a Vec<ValidationError<'static>>> {
    let off_target = |errors: &Vec<ValidationError<'static>>| {
        errors.iter().any(|e| {
            let path = e.instance_path().to_string();
            let depth = path.matches('/').count();
            matches!(e.kind(), ValidationErrorKind::Type { .. }) && depth == 0
                || matches!(e.kind(), ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. })
                    && path.ends_with("/type")
        })
    };
    context.iter().filter(|errors| !errors.is_empty()).min_by_key(|errors| (off_target(errors), errors.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(method: Method, route: &str, body: &Value) -> Vec<(String, String)> {
        match check_body(&method, route, body) {
            Ok(()) => Vec::new(),
            Err(error) => error.problems.iter().map(|p| (p.field.clone(), p.problem.clone())).collect(),
        }
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_are_integers() {
        let mut body = json!({"days": 586.0, "share": 0.5, "list": [1.0, -2.0, 3], "big": 1.0e300});
        integers_as_integers(&mut body);
        assert_eq!(body, json!({"days": 586, "share": 0.5, "list": [1, -2, 3], "big": 1.0e300}));
        #[derive(serde::Deserialize)]
        struct Days {
            days: u32,
        }
        assert_eq!(serde_json::from_value::<Days>(body).unwrap().days, 586);
    }

    #[test]
    fn every_body_schema_compiles() {
        assert!(BODIES.values().map(HashMap::len).sum::<usize>() >= 10);
        assert!(BODIES["/api/v1/numbers/{id}"].contains_key(&Method::PUT));
    }

    #[test]
    fn a_body_that_fits_passes() {
        let group = json!({"name": "Sales", "members": [1, 2]});
        assert!(problems(Method::POST, "/api/v1/groups", &group).is_empty());
        let flow = json!([{"type": "menu", "prompt": {"text": "Press 1"}, "options": {"1": [{"type": "voicemail"}]}}]);
        let number = json!({"e164": "+442071230009", "name": "Line", "flow": flow});
        assert!(problems(Method::POST, "/api/v1/numbers", &number).is_empty());
    }

    #[test]
    fn what_serde_would_let_through_is_refused_in_words() {
        // A struct from an array: serde reads it; the document does not.
        assert_eq!(
            problems(Method::POST, "/api/v1/groups", &json!(["Sales", []])),
            [("body".to_owned(), "must be an object".to_owned())]
        );
        let user = json!({"name": " ", "email": "a@b.c", "role": "boss", "settings": [null]});
        let found = problems(Method::POST, "/api/v1/users", &user);
        assert!(found.contains(&("name".into(), "must not be empty".into())), "{found:?}");
        assert!(found.contains(&("settings".into(), "must be an object".into())), "{found:?}");
        assert!(
            found.iter().any(|(f, p)| f == "role" && p.starts_with("must be one of: admin")),
            "{found:?}"
        );
        let contact = json!({"name": "Acme", "numbers": ["+442071230001", "0207"], "extra": 1});
        let found = problems(Method::POST, "/api/v1/contacts", &contact);
        assert!(found.contains(&("numbers[1]".into(), pattern_problem(rules::E164))), "{found:?}");
        assert!(found.contains(&("extra".into(), "is not a field here".into())), "{found:?}");
    }

    #[test]
    fn a_union_is_explained_by_the_branch_the_body_chose() {
        let flow = json!([{"type": "ring_user", "timeout_s": 0}, {"type": "menu", "prompt": {"text": "x"}, "options": {"9x": []}}]);
        let number = json!({"e164": "+442071230009", "name": "Line", "flow": flow});
        let found = problems(Method::POST, "/api/v1/numbers", &number);
        assert!(found.contains(&("flow[0].user".into(), "is required".into())), "{found:?}");
        assert!(found.contains(&("flow[0].timeout_s".into(), "must be at least 1".into())), "{found:?}");
        assert!(
            found.iter().any(|(f, p)| f == "flow[1].options.9x" && p.contains("keypad key")),
            "{found:?}"
        );
    }
}
