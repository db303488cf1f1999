//! Bad input gets a clear problem+json answer and changes nothing.

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        let cases = [
            (
                Method::POST,
                "/api/v1/groups",
                "{\"name\": ",
                "application/json",
                StatusCode::BAD_REQUEST,
                "not valid JSON",
            ),
            (
                Method::POST,
                "/api/v1/groups",
                "{\"name\": 5}",
                "application/json",
                StatusCode::UNPROCESSABLE_ENTITY,
                "name",
            ),
            (
                Method::POST,
                "/api/v1/groups",
                "{\"name\": \"x\", \"colour\": 1}",
                "application/json",
                StatusCode::UNPROCESSABLE_ENTITY,
                "colour",
            ),
            (Method::POST, "/api/v1/groups", "name=x", "text/plain", StatusCode::BAD_REQUEST, "Content-Type"),
            (
                Method::PUT,
                "/api/v1/settings",
                "{\"agent_call_visibility\": \"everything\"}",
                "application/json",
                StatusCode::UNPROCESSABLE_ENTITY,
                "agent_call_visibility",
            ),
        ];
        for (method, path, body, content_type, status, needle) in cases {
            let (got, headers, bytes) =
                service.send_raw(method, path, Some(&admin), body, content_type).await;
            let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, status, "{path} {body}: {problem}");
            assert_eq!(headers["content-type"], "application/problem+json");
            assert!(problem["detail"].as_str().unwrap().contains(needle), "{body}: {problem}");
            assert_eq!(problem["status"], status.as_u16());
        }
        let (_, groups) = service.get("/api/v1/groups", &admin).await;
        assert_eq!(groups, json!([]), "nothing was created");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        let huge = "x".repeat(2 * 1024 * 1024);
        let (status, body) = service.post("/api/v1/groups", &admin, json!({ "name": huge })).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["code"], "too_large");
    }
}

#[tokio::test]
async fn bad_values_are_422_with_every_problem_and_change_nothing() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        let (status, body) = service
            .post(
                "/api/v1/numbers",
                &admin,
                json!({"e164": "020 7123", "name": "", "flow": [
                {"type": "ring_user", "user": 999},
                {"type": "menu", "prompt": {"text": "?"}, "options": {}},
                {"type": "ring_group", "group": 998}]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problems = |body: &serde_json::Value| -> Vec<String> {
            body["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}: {}", p["field"].as_str().unwrap(), p["problem"].as_str().unwrap()))
                .collect()
        };
        // What the OpenAPI document says a body is, checked at the door: every problem at once.
        let found = problems(&body);
        for needle in [
            "e164: is not an E.164 number",
            "name: must not be empty",
            "flow[1].options: must have at least 1 entries",
        ] {
            assert!(found.iter().any(|p| p.starts_with(needle)), "{needle} in {found:?}");
        }
        // A body that fits the document is checked against the company: every problem at once.
        let (status, body) = service
            .post(
                "/api/v1/numbers",
                &admin,
                json!({"e164": "+442071230001", "name": "Main", "flow": [
                {"type": "ring_user", "user": 999},
                {"type": "voicemail"},
                {"type": "ring_group", "group": 998}]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let found = problems(&body);
        for needle in ["user 999 does not exist", "can never be reached", "group 998 does not exist"] {
            assert!(found.iter().any(|p| p.contains(needle)), "{needle} in {found:?}");
        }
        let (_, numbers) = service.get("/api/v1/numbers", &admin).await;
        assert_eq!(numbers, json!([]));

        let (status, body) = service
            .post(
                "/api/v1/users",
                &admin,
                json!({"name": "X", "email": "not-an-email", "role": "agent", "password": "short"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["problems"].as_array().unwrap().len(), 2, "{body}");
        let (status, body) = service
            .post(
                "/api/v1/users",
                &admin,
                json!({"name": "X", "email": "x@acme.test", "role": "boss", "password": "long-enough"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) =
            service.post("/api/v1/contacts", &admin, json!({"name": "Globex", "numbers": ["12345"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}

#[tokio::test]
async fn bad_queries_and_ids() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        for (path, status) in [
            ("/api/v1/calls?cursor=garbage", StatusCode::BAD_REQUEST),
            ("/api/v1/calls?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
            ("/api/v1/calls?limit=100000", StatusCode::UNPROCESSABLE_ENTITY),
            ("/api/v1/calls?app=phone", StatusCode::BAD_REQUEST),
            ("/api/v1/calls?color=red", StatusCode::BAD_REQUEST),
            ("/api/v1/calls/abc", StatusCode::NOT_FOUND),
            ("/api/v1/calls/99999999999999999999999", StatusCode::NOT_FOUND),
            ("/api/v1/no/such/thing", StatusCode::NOT_FOUND),
        ] {
            let (got, body) = service.get(path, &admin).await;
            assert_eq!(got, status, "{path}: {body}");
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{path}: {body}");
        }
        // A range that ends before it starts is empty, not an error.
        let (got, body) = service.get("/api/v1/calls?from=10&to=5", &admin).await;
        assert_eq!((got, &body["calls"]), (StatusCode::OK, &json!([])), "{body}");
    }
}

#[tokio::test]
async fn the_last_admin_stays() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let (_, admin_id) = service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        let (status, body) = service
            .put(
                &format!("/api/v1/users/{admin_id}"),
                &admin,
                json!({"name": "A", "email": "admin@acme.test", "role": "agent"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/users/{admin_id}"), Some(&admin), None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(service.get("/api/v1/sync", &admin).await.1["me"]["role"], "admin");
    }
}
