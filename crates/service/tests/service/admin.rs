//! Admin CRUD and the sync snapshot (SPEC §3, §9).

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn settings_are_read_by_all_and_changed_by_admins() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, settings) = service.get("/api/v1/settings", &a.ada).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            settings,
            json!({"record_inbound": true, "record_outbound": true, "record_internal": false,
                   "agent_recording_control": false, "agent_call_visibility": "own_and_missed",
                   "agent_recording_playback": "own_only", "agent_can_download": false, "paused_audio": "silence",
                   "recording_retention_days": null})
        );
        let (status, body) =
            service.put("/api/v1/settings", &a.ada, json!({"agent_can_download": true})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (_, before) = service.get("/api/v1/sync", &a.ada).await;
        let (status, _) = service.put("/api/v1/settings", &a.admin, json!({"record_internal": true})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, after) = service.get("/api/v1/sync", &a.ada).await;
        assert_eq!(after["settings"]["record_internal"], true);
        assert!(after["version"].as_i64() > before["version"].as_i64(), "the version moves on");
    }
}

#[tokio::test]
async fn sync_gives_the_caller_what_the_rules_need() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, sync) = service.get("/api/v1/sync", &a.ada).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sync["company"]["name"], "Acme");
        assert_eq!(sync["me"]["name"], "Ada");
        assert_eq!(sync["users"].as_array().unwrap().len(), 5);
        assert!(
            sync["users"].as_array().unwrap().iter().all(|u| u["settings"].is_null()),
            "others' settings are admin-only"
        );
        assert_eq!(sync["numbers"].as_array().unwrap().len(), 2);
        assert_eq!(sync["groups"].as_array().unwrap().len(), 2);
        let (_, admin_sync) = service.get("/api/v1/sync", &a.admin).await;
        assert!(admin_sync["users"].as_array().unwrap().iter().all(|u| u["settings"].is_object()));
    }
}

#[tokio::test]
async fn users_groups_numbers_and_contacts_round_trip() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, users) = service.get("/api/v1/users", &a.admin).await;
        assert_eq!(status, StatusCode::OK);
        let sam = users.as_array().unwrap().iter().find(|u| u["name"] == "Sam").unwrap();
        assert_eq!(sam["settings"]["call_visibility"], "groups_and_numbers");
        assert_eq!(sam["has_sip_password"], false);
        assert!(sam.get("password_hash").is_none());
        let (status, _) = service.get("/api/v1/users", &a.ada).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let (status, body) = service
            .post(
                "/api/v1/users",
                &a.admin,
                json!({"name": "Cy", "email": "ada@acme.test", "role": "agent", "password": "cy-password"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) = service
            .post("/api/v1/users", &a.admin, json!({"name": "Cy", "email": "cy@acme.test", "role": "agent", "password": "cy-password", "extension": "101"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("Extension 101"));
        let cy = service
            .create_user(&a.admin, json!({"name": "Cy", "email": "cy@acme.test", "role": "agent", "password": "cy-password", "sip_password": "sip-secret-1"}))
            .await;
        let (_, cy_out) = service.get(&format!("/api/v1/users/{cy}"), &a.admin).await;
        assert_eq!(cy_out["has_sip_password"], true);

        // A user a flow rings can't be deleted; one it doesn't ring can.
        let (status, body) = service
            .request(Method::DELETE, &format!("/api/v1/users/{}", a.bo_id), Some(&a.admin), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("Support line"));
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/users/{cy}"), Some(&a.admin), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, group) =
            service.post("/api/v1/groups", &a.admin, json!({"name": "Night", "members": [a.ada_id.0]})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(group["members"], json!([a.ada_id.0]));
        let id = group["id"].as_i64().unwrap();
        let (status, group) = service
            .put(&format!("/api/v1/groups/{id}"), &a.admin, json!({"name": "Nights", "members": []}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(group["name"], "Nights");
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/groups/{id}"), Some(&a.admin), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, number) = service.get(&format!("/api/v1/numbers/{}", a.support_line), &a.ada).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(number["flow"][0]["type"], "menu");
        let (status, body) = service
            .post(
                "/api/v1/numbers",
                &a.admin,
                json!({"e164": "+442070000010", "name": "Dup", "flow": [{"type": "voicemail"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");

        let (status, contact) = service
            .post(
                "/api/v1/contacts",
                &a.admin,
                json!({"name": "Globex", "numbers": ["+15550100", "+15550100"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(contact["numbers"], json!(["+15550100"]));
        let id = contact["id"].as_i64().unwrap();
        let (status, contact) = service
            .put(&format!("/api/v1/contacts/{id}"), &a.admin, json!({"name": "Globex Ltd", "numbers": []}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(contact["name"], "Globex Ltd");
        let (status, list) = service.get("/api/v1/contacts", &a.bo).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        let (status, _) = service.post("/api/v1/contacts", &a.bo, json!({"name": "Mine"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_users_caller_id_is_one_of_the_company_numbers_and_falls_back_when_it_goes() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, number) = service
            .post(
                "/api/v1/numbers",
                &a.admin,
                json!({"e164": "+15550199", "name": "Sales", "flow": [{"type": "voicemail"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{number}");
        let sales = number["id"].as_i64().unwrap();
        let user = |caller_id: serde_json::Value| json!({"name": "Cy", "email": "cy@acme.test", "role": "agent", "password": "cy-password", "caller_id": caller_id});

        let (status, body) = service.post("/api/v1/users", &a.admin, user(json!(999_999))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["problems"][0]["field"], "caller_id");
        assert!(body["detail"].is_string());

        let cy = service.create_user(&a.admin, user(json!(sales))).await;
        let (_, cy_out) = service.get(&format!("/api/v1/users/{cy}"), &a.admin).await;
        assert_eq!(cy_out["caller_id"], json!(sales));
        let mut write = user(serde_json::Value::Null);
        write.as_object_mut().unwrap().remove("password");
        let (status, cy_out) = service.put(&format!("/api/v1/users/{cy}"), &a.admin, write).await;
        assert_eq!(status, StatusCode::OK, "{cy_out}");
        assert_eq!(
            cy_out["caller_id"],
            serde_json::Value::Null,
            "a full replace: unset is the company default"
        );

        let (status, _) = service.put(&format!("/api/v1/users/{cy}"), &a.admin, user(json!(sales))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) =
            service.request(Method::DELETE, &format!("/api/v1/numbers/{sales}"), Some(&a.admin), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, cy_out) = service.get(&format!("/api/v1/users/{cy}"), &a.admin).await;
        assert_eq!(
            cy_out["caller_id"],
            serde_json::Value::Null,
            "deleting the number returns the user to the default"
        );
    }
}
