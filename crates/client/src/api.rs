//! The service's REST API over HTTP (reqwest, rustls): one [`Api`] per
//! signed-in session, carrying the bearer token. Every refusal becomes a
//! [`ClientError`] with the service's problem+json `detail`.

use crate::error::{ClientError, Result};
use earshot_api::{
    AppQuery, CallOut, CallPage, CallsQuery, ContactOut, LogIn, Peaks, Session, Summary, SyncSnapshot,
};
use earshot_policy::{AppContext, CallId, ContactId, RecordingId};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

/// A connection to one server for one user.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl std::fmt::Debug for Api {
    // Never the token: it would end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("server", &self.server).finish_non_exhaustive()
    }
}

/// The problem+json body of a refusal.
#[derive(serde::Deserialize)]
struct Problem {
    detail: Option<String>,
    title: Option<String>,
}

impl Api {
    /// Logs in to `server` (`http://host:port`) with e-mail and password.
    pub async fn log_in(server: &str, email: &str, password: &str) -> Result<(Self, Session)> {
        let server = normalize_server(server)?;
        let http = http_client()?;
        let body = LogIn { email: email.trim().to_owned(), password: password.to_owned() };
        let response = http
            .post(format!("{server}/api/v1/session"))
            .json(&body)
            .send()
            .await
            .map_err(|error| offline(&server, &error))?;
        let response = match check(&server, response).await {
            Err(ClientError::SessionEnded { detail }) => return Err(ClientError::LogInRefused { detail }),
            Err(ClientError::Service { status: 429, detail }) => {
                return Err(ClientError::LogInRefused { detail });
            }
            other => other?,
        };
        let session: Session = read_json(response).await?;
        Ok((Self { http, server, token: session.token.clone() }, session))
    }

    /// A connection with a token kept from an earlier log-in.
    pub fn with_token(server: &str, token: String) -> Result<Self> {
        Ok(Self { http: http_client()?, server: normalize_server(server)?, token })
    }

    /// The server's address, as normalized (`http://host:port`, no trailing `/`).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Ends the session on the service (the token stops working).
    pub async fn log_out(&self) -> Result<()> {
        self.send(self.request(Method::DELETE, "/session")).await.map(drop)
    }

    /// `GET /sync`: what the app decides rights from.
    pub async fn sync(&self) -> Result<SyncSnapshot> {
        read_json(self.send(self.request(Method::GET, "/sync")).await?).await
    }

    /// One page of the call history the service lets the user see.
    pub async fn calls(&self, query: &CallsQuery) -> Result<CallPage> {
        read_json(self.send(self.request(Method::GET, "/calls").query(query)).await?).await
    }

    /// One call, as seen in `app`.
    pub async fn call(&self, id: CallId, app: AppContext) -> Result<CallOut> {
        let query = AppQuery { app: Some(app) };
        read_json(self.send(self.request(Method::GET, &format!("/calls/{id}")).query(&query)).await?).await
    }

    /// The analytics summary of calls started in `from..to` (ms), SPEC §4.3.
    pub async fn analytics(&self, from: i64, to: i64) -> Result<Summary> {
        let range = [("from", from), ("to", to)];
        read_json(self.send(self.request(Method::GET, "/analytics/summary").query(&range)).await?).await
    }

    /// A recording's waveform in `buckets` bars.
    pub async fn peaks(&self, recording: RecordingId, app: AppContext, buckets: usize) -> Result<Peaks> {
        let path = format!("/recordings/{recording}/peaks?app={}&buckets={buckets}", app.as_str());
        self.get(&path).await
    }

    /// One contact.
    pub async fn contact(&self, id: ContactId) -> Result<ContactOut> {
        read_json(self.send(self.request(Method::GET, &format!("/contacts/{id}"))).await?).await
    }

    /// `GET {path}` as JSON (the admin screens' reads).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        read_json(self.send(self.request(Method::GET, path)).await?).await
    }

    /// `POST` (no `id`) or `PUT {path}/{id}` of `body`: an admin's write. The
    /// service's refusal (422 with what is wrong) comes back as its words.
    pub async fn write<B: serde::Serialize + Sync>(
        &self,
        path: &str,
        id: Option<i64>,
        body: &B,
    ) -> Result<()> {
        let request = match id {
            Some(id) => self.request(Method::PUT, &format!("{path}/{id}")),
            None => self.request(Method::POST, path),
        };
        self.send(request.json(body)).await.map(drop)
    }

    /// `POST {path}` of `body`, reading the JSON answer.
    pub async fn post_json<B: serde::Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        read_json(self.send(self.request(Method::POST, path).json(body)).await?).await
    }

    /// `PUT {path}` of `body` (a whole resource without an id: the settings).
    pub async fn put<B: serde::Serialize + Sync>(&self, path: &str, body: &B) -> Result<()> {
        self.send(self.request(Method::PUT, path).json(body)).await.map(drop)
    }

    /// `DELETE {path}`.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, path)).await.map(drop)
    }

    /// A request to `/api/v1{path}` with the bearer token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}/api/v1{path}", self.server)).bearer_auth(&self.token)
    }

    /// Sends and turns a refusal into an error.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await.map_err(|error| offline(&self.server, &error))?;
        check(&self.server, response).await
    }
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("earshot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ClientError::Protocol(error.to_string()))
}

/// `host:port`, `http://host:port/` and the like to `http://host:port`.
pub(crate) fn normalize_server(server: &str) -> Result<String> {
    let server = server.trim().trim_end_matches('/');
    if server.is_empty() {
        return Err(ClientError::Service { status: 0, detail: "Enter the server's address.".into() });
    }
    let server = if server.contains("://") { server.to_owned() } else { format!("http://{server}") };
    reqwest::Url::parse(&server).map_err(|_| ClientError::Service {
        status: 0,
        detail: format!("\"{server}\" is not a server address."),
    })?;
    Ok(server)
}

fn offline(server: &str, error: &reqwest::Error) -> ClientError {
    let reason = if error.is_timeout() {
        "it did not answer in time".to_owned()
    } else if error.is_connect() {
        "no connection".to_owned()
    } else {
        error.to_string()
    };
    ClientError::Offline { server: server.to_owned(), reason }
}

/// Passes a success through; turns a refusal into the matching error.
async fn check(server: &str, response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let problem: Option<Problem> = response.json().await.ok();
    let detail = problem
        .and_then(|p| p.detail.or(p.title))
        .unwrap_or_else(|| format!("The server at {server} answered {status}."));
    Err(match status {
        StatusCode::UNAUTHORIZED => ClientError::SessionEnded { detail },
        StatusCode::FORBIDDEN => ClientError::Forbidden { detail },
        StatusCode::NOT_FOUND => ClientError::NotFound { detail },
        _ => ClientError::Service { status: status.as_u16(), detail },
    })
}

async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T> {
    let bytes = response.bytes().await.map_err(|error| ClientError::Protocol(error.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|error| ClientError::Protocol(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::normalize_server;

    #[test]
    fn server_addresses_are_normalized() {
        assert_eq!(normalize_server("127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_server(" https://pbx.example.com/ ").unwrap(), "https://pbx.example.com");
        assert!(normalize_server("").is_err());
        assert!(normalize_server("http://exa mple").is_err());
    }
}
