//! D8: a user of one company reaches nothing of another's, whatever ids they guess.

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn another_company_is_out_of_reach() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        service.company("Initech").await;
        let other = service.log_in("admin@initech.test", "admin-password").await;
        let (_, acme_call) = service.get(&format!("/api/v1/calls/{}", a.sales_answered), &a.admin).await;
        let recording = acme_call["recording"]["id"].as_i64().unwrap();
        let (_, groups) = service.get("/api/v1/groups", &a.admin).await;
        let group = groups[0]["id"].as_i64().unwrap();
        let (_, contact) = service.post("/api/v1/contacts", &a.admin, json!({"name": "Globex"})).await;
        let contact = contact["id"].as_i64().unwrap();

        for path in [
            format!("/api/v1/calls/{}", a.sales_answered),
            format!("/api/v1/recordings/{recording}/audio"),
            format!("/api/v1/recordings/{recording}/download"),
            format!("/api/v1/users/{}", a.ada_id),
            format!("/api/v1/numbers/{}", a.sales_line),
            format!("/api/v1/contacts/{contact}"),
            format!("/api/v1/contacts/{contact}/calls"),
        ] {
            let (status, body) = service.get(&path, &other).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
        // Writes by id miss too, and change nothing.
        let (status, _) =
            service.put(&format!("/api/v1/groups/{group}"), &other, json!({"name": "Mine"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/users/{}", a.ada_id), Some(&other), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/contacts/{contact}"), Some(&other), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, groups) = service.get("/api/v1/groups", &a.admin).await;
        assert_ne!(groups[0]["name"], "Mine");
        // Lists hold only one's own company.
        assert_eq!(service.visible(&other, "dashboard").await, vec![]);
        for path in
            ["/api/v1/users", "/api/v1/groups", "/api/v1/numbers", "/api/v1/contacts", "/api/v1/audit"]
        {
            let (status, list) = service.get(path, &other).await;
            assert_eq!(status, StatusCode::OK);
            let own = list.as_array().unwrap();
            assert!(
                own.iter().all(|item| item["company"].is_null() || item["company"] != a.company.0),
                "{path}"
            );
            assert!(own.len() <= 1, "{path}: only Initech's admin, nothing else: {list}");
        }
        // A flow of Initech can't ring Acme's people.
        let (status, body) = service
            .post(
                "/api/v1/numbers",
                &other,
                json!({"e164": "+442079999999", "name": "Main", "flow": [{"type": "ring_user", "user": a.ada_id.0}]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}
