//! The HTTP API under `/api/v1` (SPEC §9): routes, and the extractors that
//! turn malformed requests into problem+json answers.

mod admin;
pub mod analytics;
pub mod calls;
mod contract;
mod devices;
mod events;
mod import;
mod recordings;
mod retention;
mod session;
mod sync;

pub use events::EventCalls;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

/// Largest JSON body accepted, in bytes (imports have their own, larger limit).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// The whole HTTP side of the service.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/session", post(session::log_in).delete(session::log_out))
        .route("/devices", post(devices::issue))
        .route("/me/availability", put(devices::set_availability))
        .route("/sync", get(sync::sync))
        .route("/events", get(events::events))
        .route("/settings", get(admin::get_settings).put(admin::put_settings))
        .route("/users", get(admin::list_users).post(admin::create_user))
        .route("/users/{id}", get(admin::get_user).put(admin::update_user).delete(admin::delete_user))
        .route("/groups", get(admin::list_groups).post(admin::create_group))
        .route("/groups/{id}", put(admin::update_group).delete(admin::delete_group))
        .route("/numbers", get(admin::list_numbers).post(admin::create_number))
        .route("/numbers/{id}", get(admin::get_number).put(admin::update_number).delete(admin::delete_number))
        .route("/contacts", get(admin::list_contacts).post(admin::create_contact))
        .route(
            "/contacts/{id}",
            get(admin::get_contact).put(admin::update_contact).delete(admin::delete_contact),
        )
        .route("/contacts/{id}/calls", get(calls::contact_calls))
        .route("/contacts/{id}/recordings", axum::routing::delete(retention::delete_contact_recordings))
        .route("/calls/{id}/legal-hold", put(retention::set_legal_hold))
        .route("/calls", get(calls::list_calls))
        .route("/calls/import", post(import::import).layer(DefaultBodyLimit::max(import::MAX_IMPORT_BODY)))
        .route("/calls/{id}", get(calls::get_call))
        .route("/recordings/{id}/audio", get(recordings::audio))
        .route("/recordings/{id}/download", get(recordings::download))
        .route("/recordings/{id}/peaks", get(recordings::peaks))
        .route("/audit", get(recordings::audit_log))
        .route("/analytics/summary", get(analytics::summary))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::count))
        .with_state(state)
}

/// `GET /healthz`: 200 when the service can do its work, 503 when a
/// dependency is down, with what each one is doing:
/// `{"status": "ok"|"degraded", "database": "ok"|"down", "recordings":
/// "local"|"ok"|"down", "uploads_pending": n, "events": "local"|"ok"|"down"}`.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let wait = std::time::Duration::from_secs(3);
    let probe = crate::db::Query::new("SELECT 1 AS ok");
    let database = tokio::time::timeout(wait, state.db.fetch_optional(state.db.pool(), &probe)).await;
    let database = matches!(database, Ok(Ok(Some(_))));
    let recordings = tokio::time::timeout(wait, state.recordings.reachable()).await.unwrap_or(Some(false));
    let events = state.events.listening();
    let up = |up: Option<bool>, alone: &str| match up {
        None => alone.to_owned(),
        Some(true) => "ok".to_owned(),
        Some(false) => "down".to_owned(),
    };
    let healthy = database && recordings != Some(false) && events != Some(false);
    let pending =
        state.recordings.upload_stats().map(|s| s.pending.load(std::sync::atomic::Ordering::Relaxed));
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "database": up(Some(database), "ok"),
        "recordings": up(recordings, "local"),
        "uploads_pending": pending.unwrap_or(0),
        "events": up(events, "local"),
    });
    let status =
        if healthy { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body))
}

async fn not_found() -> impl IntoResponse {
    ApiError::not_found("endpoint")
}

/// A JSON body that fits its operation's schema in the OpenAPI document
/// ([`contract`]), read into `T`; rejections as problem+json.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
        let method = request.method().clone();
        let axum::Json(mut body) = axum::Json::<serde_json::Value>::from_request(request, state).await?;
        if let Some(route) = route {
            contract::check_body(&method, &route, &body)?;
        }
        contract::integers_as_integers(&mut body);
        serde_json::from_value(body).map(Json).map_err(|e| ApiError::invalid_field("body", e.to_string()))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, with rejections as problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, with rejections as problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::invalid_field("body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request(format!("The body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::bad_request("Send the body as JSON, with Content-Type: application/json.")
            }
            JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::too_large("The body is larger than this endpoint accepts.")
            }
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!("The query string is not valid: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(_) => ApiError::not_found("record with that id"),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

/// The OpenAPI document of this API, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Earshot API",
        description = "Earshot's call and recording service. Every right is decided by earshot-policy (SPEC §3–§6). \
                       Errors are application/problem+json with a human `detail` and a stable `code`."
    ),
    paths(
        session::log_in,
        session::log_out,
        devices::issue,
        devices::set_availability,
        sync::sync,
        events::events,
        admin::get_settings,
        admin::put_settings,
        admin::list_users,
        admin::create_user,
        admin::get_user,
        admin::update_user,
        admin::delete_user,
        admin::list_groups,
        admin::create_group,
        admin::update_group,
        admin::delete_group,
        admin::list_numbers,
        admin::create_number,
        admin::get_number,
        admin::update_number,
        admin::delete_number,
        admin::list_contacts,
        admin::create_contact,
        admin::get_contact,
        admin::update_contact,
        admin::delete_contact,
        calls::list_calls,
        calls::get_call,
        calls::contact_calls,
        retention::set_legal_hold,
        retention::delete_contact_recordings,
        import::import,
        recordings::audio,
        recordings::download,
        recordings::peaks,
        recordings::audit_log,
        analytics::summary,
        openapi_json,
    ),
    modifiers(&BearerAuth, &CommonResponses, &CreateLinks)
)]
pub struct ApiDoc;

/// The names `values` are written as in JSON (their serde names).
fn enum_names<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values.iter().filter_map(|v| serde_json::to_value(v).ok()?.as_str().map(str::to_owned)).collect()
}

/// The answers every operation of a kind can give, added where its own
/// annotation does not list them, so the document says every status the
/// service can answer (issue 18): 401 where a session is needed, 403 where
/// it must be an admin's (`security(("bearer" = ["admin"]))`), 400 for a
/// body, query or path that does not parse, 422 for a body or query whose
/// values are refused, 404 for a path that names nothing, 503 when a dependency
/// is down (with `Retry-After`). Every error answer is described as the
/// `Problem` schema. The query parameters that take a policy enum (`app`,
/// `direction`, `status`) list its values, from the enum itself.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut schemas = vec![(
            <crate::error::ProblemDoc as utoipa::ToSchema>::name().into_owned(),
            <crate::error::ProblemDoc as utoipa::PartialSchema>::schema(),
        )];
        <crate::error::ProblemDoc as utoipa::ToSchema>::schemas(&mut schemas);
        for (name, schema) in schemas {
            components.schemas.insert(name, schema);
        }
        let problem = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                // `security(("bearer" = ["admin"]))`: the role the operation needs.
                let admins_only = serde_json::to_value(&operation.security)
                    .is_ok_and(|security| security.to_string().contains(r#""bearer":["admin"]"#));
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let in_path = parameters.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = parameters.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let body = operation.request_body.is_some();
                let mut common: Vec<(&str, &str)> = Vec::new();
                if secured {
                    common.push(("401", "No valid session: log in again"));
                }
                if admins_only {
                    common.push(("403", "Only an admin of the company may do this"));
                }
                if body || in_query || in_path {
                    common.push(("400", "The body, a query parameter or the path does not parse"));
                }
                if body || in_query {
                    common.push(("422", "A value in the body or the query is not acceptable"));
                }
                if in_path {
                    common.push(("404", "Nothing of that id (or nothing the caller may know of)"));
                }
                if secured || body {
                    common.push((
                        "503",
                        "A dependency (the database, the recordings' store) is down; see Retry-After",
                    ));
                }
                // The query parameters whose values are a policy enum: their names.
                for parameter in operation.parameters.iter_mut().flatten() {
                    if !matches!(parameter.parameter_in, ParameterIn::Query) {
                        continue;
                    }
                    let values = match parameter.name.as_str() {
                        "app" => enum_names(&earshot_policy::AppContext::ALL),
                        "direction" => enum_names(&earshot_policy::Direction::ALL),
                        "status" => enum_names(&earshot_policy::CallStatus::ALL),
                        _ => continue,
                    };
                    parameter.schema = Some(RefOr::T(utoipa::openapi::schema::Schema::Object(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .enum_values(Some(values))
                            .build(),
                    )));
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in common {
                    responses.entry(status.to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/problem+json", problem())
                                .build(),
                        )
                    });
                }
                // Error answers declared without a shape get the Problem schema.
                for (status, response) in responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && status.as_str() >= "400"
                    {
                        for (kind, content) in &mut response.content {
                            if kind == "application/problem+json" && content.schema.is_none() {
                                content.schema = Some(RefOr::Ref(Ref::from_schema_name("Problem")));
                            }
                        }
                        if response.content.is_empty() {
                            response.content.insert("application/problem+json".to_owned(), problem());
                        }
                    }
                }
            }
        }
    }
}

/// Links from each operation that creates a record (`POST /x` answering
/// 201 with its `id`) to those that read, change and delete it
/// (`/x/{id}`), so a client (and schemathesis' stateful phase) knows that
/// the id answered is the id to use next.
struct CreateLinks;

impl utoipa::Modify for CreateLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        let mut links = Vec::new();
        for (path, item) in &openapi.paths.paths {
            let Some(target) = openapi.paths.paths.get(&format!("{path}/{{id}}")) else { continue };
            if item.post.is_none() {
                continue;
            }
            let pointer =
                format!("#/paths/{}", format!("{path}/{{id}}").replace('~', "~0").replace('/', "~1"));
            let kinds = [("Get", target.get.is_some(), "get"), ("Update", target.put.is_some(), "put")];
            let kinds = kinds.into_iter().chain([("Delete", target.delete.is_some(), "delete")]);
            for (name, present, method) in kinds {
                if present {
                    links.push((path.clone(), name, format!("{pointer}/{method}")));
                }
            }
        }
        for (path, name, operation) in links {
            let Some(RefOr::T(created)) = openapi
                .paths
                .paths
                .get_mut(&path)
                .and_then(|item| item.post.as_mut())
                .and_then(|post| post.responses.responses.get_mut("201"))
            else {
                continue;
            };
            let link = LinkBuilder::new()
                .operation_ref(operation)
                .parameter("id", "$response.body#/id")
                .description("The record just created")
                .build();
            created.links.insert(name.to_owned(), RefOr::T(link));
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> impl IntoResponse {
    axum::Json(document())
}

/// The OpenAPI document as served. utoipa 5.5 writes a link's fields in
/// snake case (`operation_ref`, `request_body`); OpenAPI names them in
/// camel case, which is what clients read.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi())
        .expect("the OpenAPI document serializes");
    let operations = document["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut());
    let operations =
        operations.filter_map(serde_json::Value::as_object_mut).flat_map(|item| item.values_mut());
    for operation in operations {
        let responses = operation.get_mut("responses").and_then(serde_json::Value::as_object_mut);
        for response in responses.into_iter().flat_map(|r| r.values_mut()) {
            let links = response.get_mut("links").and_then(serde_json::Value::as_object_mut);
            for link in
                links.into_iter().flat_map(|l| l.values_mut()).filter_map(serde_json::Value::as_object_mut)
            {
                for (from, to) in [
                    ("operation_ref", "operationRef"),
                    ("operation_id", "operationId"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(from) {
                        link.insert(to.to_owned(), value);
                    }
                }
            }
        }
    }
    document
}
