//! Call history through the API, as each role sees it (SPEC §4, §5, §7).

use super::support::{TestService, backends};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn each_role_sees_what_spec_4_allows() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let everything =
            vec![a.internal, a.bo_outbound, a.support_voicemail, a.support_missed, a.sales_answered];
        // Admin: everything (§4.2).
        assert_eq!(service.visible(&a.admin, "dashboard").await, everything);
        // Ada, agent, company default own_and_missed: her own calls only (the Sales line has no missed calls).
        assert_eq!(service.visible(&a.ada, "calling").await, vec![a.internal, a.sales_answered]);
        // Bo: own calls, and the missed and voicemail calls of his Support line (§4.2 rule 2).
        assert_eq!(
            service.visible(&a.bo, "calling").await,
            vec![a.internal, a.bo_outbound, a.support_voicemail, a.support_missed]
        );
        // Sam, supervisor in Sales, groups_and_numbers: the Sales line's calls (D1).
        assert_eq!(service.visible(&a.supervisor, "dashboard").await, vec![a.sales_answered]);
        // Nia, analyst with nothing configured: nothing in the dashboard (D1) ...
        assert_eq!(service.visible(&a.analyst, "dashboard").await, vec![]);
        // ... and in analytics the company's own_and_missed: she owns nothing, no numbers: nothing (D2).
        assert_eq!(service.visible(&a.analyst, "analytics").await, vec![]);
    }
}

#[tokio::test]
async fn a_company_setting_change_applies_to_the_next_request() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, settings) = service.get("/api/v1/settings", &a.admin).await;
        assert_eq!(status, StatusCode::OK);
        let mut settings = settings;
        settings["agent_call_visibility"] = json!("all");
        settings["agent_recording_playback"] = json!("all_available");
        let (status, body) = service.put("/api/v1/settings", &a.admin, settings).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Agents now see every call (§3, §7)...
        assert_eq!(service.visible(&a.ada, "calling").await.len(), 5);
        // ... supervisors and analysts outside analytics do not change (D1) ...
        assert_eq!(service.visible(&a.analyst, "dashboard").await, vec![]);
        // ... and in analytics the analyst now sees all (D2).
        assert_eq!(service.visible(&a.analyst, "analytics").await.len(), 5);
        // The play right follows: Ada may now play Bo's outbound recording.
        let (_, call) = service.get(&format!("/api/v1/calls/{}?app=calling", a.bo_outbound), &a.ada).await;
        assert_eq!(call["can_play"], true);
        assert_eq!(call["can_download"], false, "agent_can_download is still off");
    }
}

#[tokio::test]
async fn a_user_override_and_a_routing_change_apply_at_once() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        // Give Ada via_groups: the Sales line's calls are hers to see already; no change.
        let (status, _) = service
            .put(
                &format!("/api/v1/users/{}", a.ada_id),
                &a.admin,
                json!({"name": "Ada", "email": "ada@acme.test", "role": "agent", "extension": "101",
                       "groups": [], "settings": {"call_visibility": "all"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(service.visible(&a.ada, "calling").await.len(), 5);
        // Route the Support line to Ada only: Bo loses its missed calls, Ada gains them at any level (D7).
        let (status, body) = service
            .put(
                &format!("/api/v1/numbers/{}", a.support_line),
                &a.admin,
                json!({"e164": "+442070000011", "name": "Support line", "flow": [{"type": "ring_user", "user": a.ada_id.0}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(service.visible(&a.bo, "calling").await, vec![a.internal, a.bo_outbound]);
    }
}

#[tokio::test]
async fn filters_narrow_the_history() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let ids = |page: serde_json::Value| {
            page["calls"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect::<Vec<_>>()
        };
        let get = |query: String| {
            let token = a.admin.clone();
            let service = &service;
            async move {
                let (status, page) = service.get(&format!("/api/v1/calls?{query}"), &token).await;
                assert_eq!(status, StatusCode::OK, "{query}: {page}");
                ids(page)
            }
        };
        assert_eq!(get("direction=outbound".into()).await, vec![a.bo_outbound.0]);
        assert_eq!(get("status=missed".into()).await, vec![a.support_missed.0]);
        assert_eq!(get(format!("number={}", a.sales_line)).await, vec![a.sales_answered.0]);
        assert_eq!(get(format!("user={}", a.ada_id)).await, vec![a.internal.0, a.sales_answered.0]);
        assert_eq!(
            get("has_recording=true".into()).await,
            vec![a.internal.0, a.bo_outbound.0, a.support_voicemail.0, a.sales_answered.0]
        );
        assert_eq!(get("has_recording=false".into()).await, vec![a.support_missed.0]);
        assert_eq!(get("q=5550".into()).await.len(), 4, "external numbers match");
        assert_eq!(get("q=%25".into()).await, Vec::<i64>::new(), "% is literal");
        assert_eq!(
            get("from=1763902000000&to=1763903000001".into()).await,
            vec![a.bo_outbound.0, a.support_voicemail.0]
        );
        let (_, groups) = service.get("/api/v1/groups", &a.admin).await;
        let sales =
            groups.as_array().unwrap().iter().find(|g| g["name"] == "Sales").unwrap()["id"].as_i64().unwrap();
        assert_eq!(get(format!("group={sales}")).await, vec![a.internal.0, a.sales_answered.0]);
    }
}

#[tokio::test]
async fn invisible_calls_are_not_found() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, body) = service.get(&format!("/api/v1/calls/{}", a.bo_outbound), &a.ada).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = service.get(&format!("/api/v1/calls/{}", a.sales_answered), &a.ada).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["can_play"], true, "own_only: her own call");
        assert_eq!(body["can_download"], false);
        assert_eq!(body["recording"]["kind"], "call");
    }
}

#[tokio::test]
async fn contact_log_shows_the_contacts_visible_calls() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, contact) = service
            .post("/api/v1/contacts", &a.admin, json!({"name": "Globex", "numbers": ["+15550100"]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        let id = contact["id"].as_i64().unwrap();
        let db = &service.state.db;
        let mut query = earshot_service::db::Query::new("UPDATE calls SET contact_id = ");
        query.bind(id).push(" WHERE external_number IS NOT NULL");
        db.execute(db.pool(), &query).await.unwrap();
        let (status, page) = service.get(&format!("/api/v1/contacts/{id}/calls"), &a.ada).await;
        assert_eq!(status, StatusCode::OK);
        let calls: Vec<i64> =
            page["calls"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
        assert_eq!(calls, vec![a.sales_answered.0], "Ada sees only her own of Globex's calls");
        let (_, page) = service.get("/api/v1/calls?q=glob", &a.admin).await;
        assert_eq!(page["calls"].as_array().unwrap().len(), 4, "free text matches contact names");
    }
}
