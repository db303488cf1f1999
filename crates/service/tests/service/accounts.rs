//! Accounts: log-in, log-out, lock-out, disabling, and how secrets are stored.

use super::support::{TestService, backends};
use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::Row as _;

#[tokio::test]
async fn log_in_gives_a_token_that_works_until_log_out() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let (status, body) = service
            .request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": "Admin@Acme.test", "password": "admin-password"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user"]["role"], "admin");
        assert!(body["expires_at"].as_i64().unwrap() > earshot_service::now_millis());
        let token = body["token"].as_str().unwrap();
        assert_eq!(service.get("/api/v1/sync", token).await.0, StatusCode::OK);

        let (status, _) = service.request(Method::DELETE, "/api/v1/session", Some(token), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = service.get("/api/v1/sync", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthenticated");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_read_the_same() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let wrong = service
            .request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": "admin@acme.test", "password": "nope-nope"})),
            )
            .await;
        let unknown = service
            .request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": "nobody@acme.test", "password": "nope-nope"})),
            )
            .await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown);
        assert_eq!(wrong.1["detail"], "The e-mail address or password is wrong.");
    }
}

#[tokio::test]
async fn five_failures_lock_the_account_briefly() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let attempt = |password: &'static str| {
            service.request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": "admin@acme.test", "password": password})),
            )
        };
        for _ in 0..4 {
            assert_eq!(attempt("wrong-password").await.0, StatusCode::UNAUTHORIZED);
        }
        let (status, body) = attempt("wrong-password").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["code"], "locked");
        // Locked: even the right password is refused until the lock ends.
        let (status, _) = attempt("admin-password").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // The lock ends (moved into the past here rather than waiting a minute).
        let db = &service.state.db;
        db.execute(db.pool(), &earshot_service::db::Query::new("UPDATE users SET locked_until = 1"))
            .await
            .unwrap();
        assert_eq!(attempt("admin-password").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn unknown_e_mails_lock_the_same_way() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        for email in ["admin@acme.test", "nobody@acme.test"] {
            let mut statuses = Vec::new();
            for _ in 0..6 {
                let (status, _) = service
                    .request(
                        Method::POST,
                        "/api/v1/session",
                        None,
                        Some(json!({"email": email, "password": "wrong-password"})),
                    )
                    .await;
                statuses.push(status.as_u16());
            }
            assert_eq!(statuses, vec![401, 401, 401, 401, 429, 429], "{email}");
        }
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let admin = service.log_in("admin@acme.test", "admin-password").await;
        let agent = service
            .create_user(&admin, json!({"name": "Ada", "email": "ada@acme.test", "role": "agent", "password": "ada-password", "extension": "101"}))
            .await;
        let token = service.log_in("ada@acme.test", "ada-password").await;
        assert_eq!(service.get("/api/v1/sync", &token).await.0, StatusCode::OK);

        let (status, body) = service
            .put(
                &format!("/api/v1/users/{agent}"),
                &admin,
                json!({"name": "Ada", "email": "ada@acme.test", "role": "agent", "extension": "101", "disabled": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["disabled"], true);
        assert_eq!(service.get("/api/v1/sync", &token).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = service
            .request(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"email": "ada@acme.test", "password": "ada-password"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["detail"].as_str().unwrap().contains("disabled"), "{body}");
    }
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let token = service.log_in("admin@acme.test", "admin-password").await;
        let db = &service.state.db;
        db.execute(db.pool(), &earshot_service::db::Query::new("UPDATE sessions SET expires_at = 1"))
            .await
            .unwrap();
        let (status, body) = service.get("/api/v1/sync", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    }
}

#[tokio::test]
async fn passwords_and_tokens_are_stored_hashed() {
    for backend in backends() {
        let service = TestService::start(&backend).await;
        service.company("Acme").await;
        let token = service.log_in("admin@acme.test", "admin-password").await;
        let db = &service.state.db;
        let row = db
            .fetch_optional(db.pool(), &earshot_service::db::Query::new("SELECT password_hash FROM users"))
            .await
            .unwrap()
            .unwrap();
        let hash: String = row.try_get("password_hash").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let rows = db
            .fetch_all(db.pool(), &earshot_service::db::Query::new("SELECT token_hash FROM sessions"))
            .await
            .unwrap();
        let stored: Vec<String> = rows.iter().map(|row| row.try_get("token_hash").unwrap()).collect();
        assert_eq!(stored, vec![earshot_service::auth::hash_token(&token)]);
        assert!(!stored[0].contains(&token));
    }
}

#[tokio::test]
async fn every_request_needs_a_token() {
    let service = TestService::start(&None).await;
    for path in
        ["/api/v1/sync", "/api/v1/calls", "/api/v1/settings", "/api/v1/recordings/1/audio", "/api/v1/audit"]
    {
        let (status, body) = service.request(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthenticated");
        let (status, _) = service.request(Method::GET, path, Some("made-up-token"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
