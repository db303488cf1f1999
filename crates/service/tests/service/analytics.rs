//! `GET /api/v1/analytics/summary` counts exactly the calls visible in analytics (SPEC §4.3, D2).

use super::support::{TestService, backends};
use axum::http::StatusCode;
use serde_json::json;

const RANGE: &str = "from=1763800000000&to=1764000000000";

#[tokio::test]
async fn summary_counts_what_analytics_shows() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        let a = service.acme().await;
        let (status, summary) = service.get(&format!("/api/v1/analytics/summary?{RANGE}"), &a.admin).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(summary["calls"], 5);
        assert_eq!(summary["answered"], 3);
        assert_eq!(summary["recorded"], 3);
        assert_eq!(summary["recorded_share"], 1.0);
        assert_eq!(summary["answered_rate"], 0.6);
        assert_eq!(summary["by_direction"], json!({"inbound": 3, "internal": 1, "outbound": 1}));
        assert_eq!(summary["by_status"], json!({"answered": 3, "missed": 1, "voicemail": 1}));
        assert_eq!(summary["per_day"].as_array().unwrap().len(), 1);
        assert_eq!(summary["per_day"][0]["day"], "2025-11-23");
        let ada = summary["per_user"].as_array().unwrap().iter().find(|r| r["key"] == a.ada_id.0).unwrap();
        assert_eq!((ada["calls"].as_i64(), ada["answered"].as_i64()), (Some(2), Some(2)));
        assert_eq!(summary["per_group"].as_array().unwrap().len(), 2);

        // D2: the analyst, not configured, gets the company's own_and_missed in analytics: nothing.
        let (_, summary) = service.get(&format!("/api/v1/analytics/summary?{RANGE}"), &a.analyst).await;
        assert_eq!(summary["calls"], 0);
        assert_eq!(summary["answered_rate"], serde_json::Value::Null);
        let (_, mut settings) = service.get("/api/v1/settings", &a.admin).await;
        settings["agent_call_visibility"] = json!("via_groups");
        service.put("/api/v1/settings", &a.admin, settings).await;
        // via_groups: Sam's supervisor rights don't matter in analytics; his group Sales gives the Sales line.
        let (_, summary) = service.get(&format!("/api/v1/analytics/summary?{RANGE}"), &a.supervisor).await;
        assert_eq!(summary["calls"], 1);
        // A range that ends before it starts holds no calls (the document allows any two times).
        let (status, summary) = service.get("/api/v1/analytics/summary?from=5&to=1", &a.admin).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(summary["calls"], 0);
    }
}
