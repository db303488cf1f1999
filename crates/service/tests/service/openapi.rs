//! `GET /api/v1/openapi.json` documents every endpoint of SPEC §9 and the issue.

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use serde_json::json;

const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/devices"),
    ("put", "/api/v1/me/availability"),
    ("get", "/api/v1/sync"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/settings"),
    ("put", "/api/v1/settings"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("get", "/api/v1/groups"),
    ("post", "/api/v1/groups"),
    ("put", "/api/v1/groups/{id}"),
    ("delete", "/api/v1/groups/{id}"),
    ("get", "/api/v1/numbers"),
    ("post", "/api/v1/numbers"),
    ("get", "/api/v1/numbers/{id}"),
    ("put", "/api/v1/numbers/{id}"),
    ("delete", "/api/v1/numbers/{id}"),
    ("get", "/api/v1/contacts"),
    ("post", "/api/v1/contacts"),
    ("get", "/api/v1/contacts/{id}"),
    ("put", "/api/v1/contacts/{id}"),
    ("delete", "/api/v1/contacts/{id}"),
    ("get", "/api/v1/contacts/{id}/calls"),
    ("delete", "/api/v1/contacts/{id}/recordings"),
    ("put", "/api/v1/calls/{id}/legal-hold"),
    ("get", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("post", "/api/v1/calls/import"),
    ("get", "/api/v1/recordings/{id}/audio"),
    ("get", "/api/v1/recordings/{id}/download"),
    ("get", "/api/v1/recordings/{id}/peaks"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/analytics/summary"),
    ("get", "/api/v1/openapi.json"),
];

#[tokio::test]
async fn the_document_lists_every_endpoint() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let (status, doc) = service.request(Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ENDPOINTS {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is not documented"
            );
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ENDPOINTS.len(), "every documented endpoint is in the list above, and served");
        // Every listed endpoint is routed: none answers "no such endpoint".
        for (method, path) in ENDPOINTS {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) =
                service.request(method.clone(), &path.replace("{id}", "1"), None, None).await;
            let unrouted = status == StatusCode::NOT_FOUND && body["detail"] == "There is no such endpoint.";
            let wrong_method = status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(!unrouted && !wrong_method, "{method} {path}: {status} {body}");
        }
    }
}

/// The JSON names of `values`.
fn names<T: serde::Serialize>(values: &[T]) -> Vec<serde_json::Value> {
    values.iter().map(|value| serde_json::to_value(value).unwrap()).collect()
}

/// The statuses every operation of a kind can answer are in the document
/// (issue 18), each error as the `Problem` schema; checked here against
/// what the service really answers: no token is a 401, a path id that is
/// not a number a 400.
#[tokio::test]
async fn every_operation_lists_the_errors_it_can_answer_as_problems() {
    let service = TestService::start(&None).await;
    let (_, doc) = service.request(Method::GET, "/api/v1/openapi.json", None, None).await;
    let problem = &doc["components"]["schemas"]["Problem"];
    assert_eq!(problem["type"], "object", "{problem}");
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem["required"].as_array().unwrap().iter().any(|f| f == field), "{field}: {problem}");
    }
    let code = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(code.as_array().unwrap().iter().any(|c| c == "unauthenticated"), "{code}");
    for (method, path) in ENDPOINTS {
        let operation = &doc["paths"][*path][*method];
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            if status.as_str() >= "400" {
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
            }
        }
        let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
        if secured {
            assert!(responses.contains_key("401"), "{method} {path} needs a session but lists no 401");
            assert!(responses.contains_key("503"), "{method} {path}: no 503");
            let http = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = service.request(http, &path.replace("{id}", "1"), None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without a session: {body}");
        }
        if path.contains("{id}") {
            assert!(responses.contains_key("400") && responses.contains_key("404"), "{method} {path}");
        }
        if operation.get("requestBody").is_some() {
            assert!(responses.contains_key("400") && responses.contains_key("422"), "{method} {path}");
        }
        // A query's policy enums list their values, as the service reads them.
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let expected = match parameter["name"].as_str().unwrap() {
                "app" => names(&earshot_policy::AppContext::ALL),
                "direction" => names(&earshot_policy::Direction::ALL),
                "status" => names(&earshot_policy::CallStatus::ALL),
                _ => continue,
            };
            assert_eq!(parameter["schema"]["enum"], json!(expected), "{method} {path} {}", parameter["name"]);
        }
    }
    let calls = &doc["paths"]["/api/v1/calls"]["get"]["parameters"];
    let limit = calls.as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((&limit["schema"]["minimum"], &limit["schema"]["maximum"]), (&json!(1), &json!(200)));
}

#[tokio::test]
async fn health_and_metrics() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.state.events.ready(std::time::Duration::from_secs(5)).await;
        let (status, body) = service.request(Method::GET, "/healthz", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = if backend.is_some() { "ok" } else { "local" };
        assert_eq!(
            body,
            serde_json::json!({"status": "ok", "database": "ok", "recordings": "local", "uploads_pending": 0, "events": events})
        );
        service.request(Method::GET, "/api/v1/sync", None, None).await;
        let (status, body) = service.request(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let text = body.as_str().unwrap();
        assert!(text.contains("earshot_http_requests_total{method=\"GET\",status=\"401\"} 1"), "{text}");
        assert!(text.contains("earshot_http_requests_total{method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("earshot_event_streams 0"), "{text}");
        assert!(text.contains("# TYPE earshot_http_request_duration_seconds summary"));
    }
}
