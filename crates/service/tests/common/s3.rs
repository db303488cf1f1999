//! A real S3 server for the tests of recordings in object storage, shared
//! by the router tests and the SIP tests.

#![allow(dead_code, reason = "each test binary uses a part of it")]

/// The access key of the tests' S3 servers.
pub const S3_ACCESS_KEY: &str = "EARSHOTTESTKEY";
/// Its secret.
pub const S3_SECRET_KEY: &str = "earshot-test-secret-key";
/// Their bucket.
pub const S3_BUCKET: &str = "recordings";

/// A real S3 server of the test's own: `s3s-fs` (installed by `./x test`),
/// which checks every request's SigV4 signature, on a free port, over a
/// temporary directory with the bucket `recordings` in it. Killed when dropped.
pub struct S3Server {
    child: Option<std::process::Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(S3_BUCKET)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { child: None, port, root };
        server.resume().await;
        server
    }

    fn binary() -> std::path::PathBuf {
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo")));
        let installed = home.map(|home| home.join("bin/s3s-fs"));
        match installed {
            Some(path) if path.exists() => path,
            _ => std::path::PathBuf::from("s3s-fs"),
        }
    }

    /// Starts it again on the same port and directory (after [`Self::stop`]).
    pub async fn resume(&mut self) {
        let child = std::process::Command::new(Self::binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(self.root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs is installed (./x test installs it: cargo install s3s-fs@0.14.1 --locked --features binary)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("s3s-fs did not start listening on port {}", self.port);
    }

    /// Stops it (the store is down until [`Self::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `[recordings]` pointing at it, as a config file says it.
    pub fn config_toml(&self) -> String {
        format!(
            "[recordings]\nstore = \"s3\"\nendpoint = \"http://127.0.0.1:{}\"\nbucket = \"{S3_BUCKET}\"\n",
            self.port
        )
    }

    /// `[recordings]` pointing at it.
    pub fn config(&self) -> earshot_service::store::StoreConfig {
        earshot_service::store::StoreConfig {
            store: earshot_service::store::StoreKind::S3,
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            bucket: Some(S3_BUCKET.into()),
            region: Some("us-east-1".into()),
            ..earshot_service::store::StoreConfig::default()
        }
    }

    /// Recordings spooled under `spool` and kept here. Does not probe the
    /// store, so it may be down.
    pub async fn recordings(&self, spool: &std::path::Path) -> earshot_service::store::Recordings {
        earshot_service::store::Recordings::with_store(spool, self.client()).unwrap()
    }

    /// A client of its bucket, with its credentials.
    pub fn client(&self) -> std::sync::Arc<dyn object_store::ObjectStore> {
        earshot_service::store::s3_client(&self.config(), S3_ACCESS_KEY, S3_SECRET_KEY).unwrap()
    }

    /// Where s3s-fs keeps the object `key` of the bucket.
    pub fn object(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(S3_BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
