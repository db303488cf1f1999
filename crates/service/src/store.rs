//! Where recordings are kept: the local disk (the default) or an
//! S3-compatible object store, both through `object_store` (Apache Arrow's
//! crate: one interface over local files, S3, GCS and Azure, with SigV4,
//! multipart uploads, range reads and retries built in and kept by a large
//! project; a home-made S3 client would have to do all of that again).
//!
//! A call's WAV is always written to the local *spool*
//! (`data_dir/recordings/`), where it stays while the call lasts: a crash
//! mid-call leaves a file the journal repairs (`sip::journal`). With only
//! the local disk the spool is the store, and nothing more happens. With S3,
//! a finished recording (a call at hang-up, a voicemail, an import at commit,
//! whatever a crash or a failed upload left in the spool at start-up) is
//! queued for upload; the local copy is deleted only once the store holds
//! the same number of bytes. An upload that fails is retried with back-off
//! (1 s doubling to 5 min) for as long as it takes; the file stays in the
//! spool meanwhile, so a restart picks it up again, and a reader is served
//! from it. Nothing is ever lost to an unreachable store.
//!
//! Reads ([`Recordings::size`], [`Recordings::read`]) look in the spool
//! first, then in the store: the key of a recording is its file name
//! (`<company>/<call>-call.wav`) in both.
//!
//! Invariant: a recording's bytes are in the spool, or in the store, or both
//! (during the moment between an upload's check and the local delete); never
//! in neither.

use earshot_telephony::sealed::{self, KeyRing};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, WriteMultipart};
use serde::Deserialize;
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

/// The size of each part of a multipart upload (S3's smallest but the
/// last); a recording larger than one part (about 2 min 44 s of a call) is
/// uploaded in parts, several at once.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Above this size a recording is uploaded in parts.
const MULTIPART_ABOVE: u64 = PART_SIZE as u64;
/// Parts in flight at once.
const PARTS_AT_ONCE: usize = 4;
/// The first retry's wait; each failure doubles it, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of one upload.
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// The `[recordings]` section of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `local` (the default) or `s3`.
    #[serde(default)]
    pub store: StoreKind,
    /// The S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:9000` (plain HTTP only when the URL says so).
    pub endpoint: Option<String>,
    /// The bucket, which must exist.
    pub bucket: Option<String>,
    /// The region (default `us-east-1`).
    pub region: Option<String>,
    /// The master key sealing new recordings (32 bytes: raw, 64 hex digits
    /// or base64), in a file only `earshotd` can read. Unset: recordings
    /// are written as plain WAV files.
    pub key_file: Option<PathBuf>,
    /// Master keys of before a rotation: they still open what they sealed.
    #[serde(default)]
    pub older_key_files: Vec<PathBuf>,
}

impl StoreConfig {
    /// The master keys the config names, if any.
    ///
    /// # Errors
    /// A key file cannot be read or does not hold a 32-byte key.
    pub fn key_ring(&self) -> anyhow::Result<Option<KeyRing>> {
        let Some(current) = &self.key_file else {
            anyhow::ensure!(self.older_key_files.is_empty(), "older_key_files without a key_file");
            return Ok(None);
        };
        let older = self.older_key_files.iter().map(|path| read_key(path)).collect::<anyhow::Result<_>>()?;
        Ok(Some(KeyRing { current: read_key(current)?, older }))
    }
}

/// A master key from its file: 32 raw bytes, 64 hex digits, or base64.
fn read_key(path: &Path) -> anyhow::Result<sealed::MasterKey> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).map_err(|error| {
        anyhow::anyhow!("cannot read the recordings key file {}: {error}", path.display())
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    let key: Option<[u8; 32]> = if bytes.len() == 32 {
        bytes.as_slice().try_into().ok()
    } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
            .and_then(|v| v.try_into().ok())
    } else {
        base64::engine::general_purpose::STANDARD.decode(text).ok().and_then(|v| v.try_into().ok())
    };
    let key = key.ok_or_else(|| {
        anyhow::anyhow!(
            "the recordings key file {} does not hold a 32-byte key (32 raw bytes, 64 hex digits or base64); \
             make one with: head -c 32 /dev/urandom > {}",
            path.display(),
            path.display()
        )
    })?;
    Ok(sealed::MasterKey::new(&key))
}

/// Where recordings are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// On this machine's disk, under `data_dir/recordings/`.
    #[default]
    Local,
    /// In an S3-compatible object store; credentials from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    S3,
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such recording in the spool or the store.
    #[error("no such recording")]
    NotFound,
    /// The store did not answer, or answered with an error.
    #[error("the recordings store failed: {0}")]
    Store(#[from] object_store::Error),
    /// Reading the spool failed.
    #[error("reading a recording failed: {0}")]
    Io(#[from] std::io::Error),
    /// A sealed recording this service cannot open: no key, another key, or altered.
    #[error("a sealed recording cannot be opened: {0}")]
    Sealed(#[from] sealed::SealError),
}

/// Counters of the uploads, for `/metrics`.
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Recordings waiting in the spool for their upload (or its retry).
    pub pending: AtomicI64,
    /// Recordings uploaded (and their local copy deleted).
    pub uploaded: AtomicU64,
    /// Bytes uploaded.
    pub bytes: AtomicU64,
    /// Attempts that failed (each is retried).
    pub failures: AtomicU64,
}

/// The recordings of every company: the spool, and the store behind it.
#[derive(Debug)]
pub struct Recordings {
    spool: PathBuf,
    local: Arc<LocalFileSystem>,
    remote: Option<Remote>,
    keys: Option<Arc<KeyRing>>,
}

#[derive(Debug)]
struct Remote {
    store: Arc<dyn ObjectStore>,
    queue: mpsc::UnboundedSender<String>,
    stats: Arc<UploadStats>,
}

impl Recordings {
    /// Recordings on the local disk only, under `spool` (created if need be).
    ///
    /// # Errors
    /// The spool cannot be created.
    pub fn local(spool: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(spool).map_err(|e| {
            anyhow::anyhow!("cannot create the recordings directory {}: {e}", spool.display())
        })?;
        let local = LocalFileSystem::new_with_prefix(spool)?;
        Ok(Self { spool: spool.to_owned(), local: Arc::new(local), remote: None, keys: None })
    }

    /// Recordings kept as `config` says, spooled under `spool`; an S3
    /// store's credentials come from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, or an instance's role). The store is tried
    /// at once (a small object written, read and deleted), so wrong
    /// credentials, a missing bucket or an unreachable endpoint stop the
    /// start-up with a sentence saying which. Starts the uploader (call
    /// [`Self::upload_spooled`] once what a crash left is repaired).
    ///
    /// # Errors
    /// The configuration is incomplete, or the store refuses or cannot be reached.
    pub async fn open(spool: &Path, config: &StoreConfig) -> anyhow::Result<Self> {
        if config.store == StoreKind::Local {
            return Self::local(spool);
        }
        let result = Self::open_s3(spool, config, object_store::aws::AmazonS3Builder::from_env()).await;
        match result {
            Err(error) if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() => {
                Err(error.context("AWS_ACCESS_KEY_ID is not set in earshotd's environment"))
            }
            result => result,
        }
    }

    /// As [`Self::open`] for S3, with the credentials given rather than
    /// taken from the environment.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_s3_with(
        spool: &Path,
        config: &StoreConfig,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> anyhow::Result<Self> {
        let mut recordings = Self::local(spool)?;
        let store = s3_client(config, access_key_id, secret_access_key)?;
        recordings.probe_and_start(store, config).await?;
        Ok(recordings)
    }

    async fn open_s3(
        spool: &Path,
        config: &StoreConfig,
        builder: object_store::aws::AmazonS3Builder,
    ) -> anyhow::Result<Self> {
        let mut recordings = Self::local(spool)?;
        recordings.probe_and_start(s3(config, builder)?, config).await?;
        Ok(recordings)
    }

    async fn probe_and_start(
        &mut self,
        store: Arc<dyn ObjectStore>,
        config: &StoreConfig,
    ) -> anyhow::Result<()> {
        let endpoint = config.endpoint.as_deref().unwrap_or("AWS S3");
        let bucket = config.bucket.as_deref().unwrap_or_default();
        probe(store.as_ref()).await.map_err(|error| explain(&error, endpoint, bucket))?;
        self.remote = Some(Remote::start(store, self.spool.clone()));
        Ok(())
    }

    /// Recordings spooled under `spool` and uploaded to `store`, with no
    /// probe (tests, and stores built by hand).
    ///
    /// # Errors
    /// The spool cannot be created.
    pub fn with_store(spool: &Path, store: Arc<dyn ObjectStore>) -> anyhow::Result<Self> {
        let mut recordings = Self::local(spool)?;
        recordings.remote = Some(Remote::start(store, recordings.spool.clone()));
        Ok(recordings)
    }

    /// New recordings sealed under `keys.current` ([`earshot_telephony::sealed`]);
    /// sealed ones opened with any key of the ring. Recordings written before
    /// keys were configured stay as they are and play as before.
    #[must_use]
    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// The master keys, when recordings are sealed.
    #[must_use]
    pub fn keys(&self) -> Option<Arc<KeyRing>> {
        self.keys.clone()
    }

    /// The directory recordings are written to while they are recorded.
    #[must_use]
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// The upload counters, when recordings go to an object store.
    #[must_use]
    pub fn upload_stats(&self) -> Option<Arc<UploadStats>> {
        self.remote.as_ref().map(|remote| Arc::clone(&remote.stats))
    }

    /// `name` (a recording's file name, `<company>/<file>.wav`) is finished:
    /// nothing will write to it again. With an object store it is queued
    /// for upload; on the local disk it already is where it stays.
    pub fn finished(&self, name: &str) {
        if let Some(remote) = &self.remote {
            let _ = remote.queue.send(name.to_owned());
        }
    }

    /// Queues every recording in the spool for upload: what a crash, a
    /// failed upload or a stop left there. Call it at start-up once the
    /// journal has repaired the calls a crash left in progress, and before
    /// calls are taken. Returns how many were queued.
    pub fn upload_spooled(&self) -> usize {
        if self.remote.is_none() {
            return 0;
        }
        let mut queued = 0;
        for company in std::fs::read_dir(&self.spool).into_iter().flatten().flatten() {
            let Ok(files) = std::fs::read_dir(company.path()) else { continue };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "wav") && path.is_file() {
                    let name = format!(
                        "{}/{}",
                        company.file_name().to_string_lossy(),
                        file.file_name().to_string_lossy()
                    );
                    self.finished(&name);
                    queued += 1;
                }
            }
        }
        queued
    }

    /// Whether the object store answers (`None`: recordings are on the local
    /// disk only). A recording is never lost to a store that does not: it
    /// waits in the spool.
    pub async fn reachable(&self) -> Option<bool> {
        let remote = self.remote.as_ref()?;
        match remote.store.head(&Key::from("earshot-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Some(true),
            Err(_) => Some(false),
        }
    }

    /// The recording `name` as it is kept: found, its length known, opened if sealed.
    /// Read it with [`Self::read_stored`]; one look at the store serves both.
    ///
    /// # Errors
    /// It is in neither the spool nor the store, the store failed, or it is
    /// sealed under a key this service lacks.
    pub async fn stat(&self, name: &str) -> Result<Stored, StoreError> {
        let files = self.files();
        let raw_len = files.raw_size(name).await?;
        let mut sealed = None;
        if raw_len >= sealed::HEADER_LEN as u64 {
            let header = collect(files.raw_read(name, 0..sealed::HEADER_LEN as u64).await?).await?;
            if sealed::is_sealed(&header) {
                let keys = self.keys.as_ref().ok_or_else(|| {
                    sealed::SealError::UnknownKey(header[8..16].iter().map(|b| format!("{b:02x}")).collect())
                })?;
                sealed = Some(Arc::new(sealed::open(&header, raw_len, keys)?));
            }
        }
        Ok(Stored { name: name.to_owned(), raw_len, sealed })
    }

    /// The recording's size in bytes, as a WAV (a sealed one opened).
    ///
    /// # Errors
    /// As [`Self::stat`].
    pub async fn size(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.stat(name).await?.len())
    }

    /// The bytes `range` of the recording as a WAV, as they come. An empty
    /// range gives an empty stream.
    ///
    /// # Errors
    /// As [`Self::stat`].
    pub async fn read(
        &self,
        name: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, std::io::Error>>, StoreError> {
        self.read_stored(&self.stat(name).await?, range).await
    }

    /// The bytes `range` of `stored` as a WAV: as kept, or a sealed one
    /// opened a window at a time.
    ///
    /// # Errors
    /// The recording went, or the store failed.
    pub async fn read_stored(
        &self,
        stored: &Stored,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, std::io::Error>>, StoreError> {
        let files = self.files();
        let Some(opened) = stored.sealed.clone() else { return files.raw_read(&stored.name, range).await };
        // A window of the WAV at a time: its sealed chunks read, opened, handed on.
        const WINDOW: u64 = 64 * sealed::CHUNK as u64;
        let name = stored.name.clone();
        let end = range.end.min(opened.wav_len());
        let windows = futures::stream::unfold(range.start, move |at| {
            let (files, name, opened) = (files.clone(), name.clone(), Arc::clone(&opened));
            async move {
                if at >= end {
                    return None;
                }
                let window = at..(at + WINDOW).min(end);
                let next = window.end;
                let bytes = async {
                    let mut raw = match opened.raw_range_for(window.clone()) {
                        Some(raw) => Some(
                            collect(files.raw_read(&name, raw).await.map_err(std::io::Error::other)?).await?,
                        ),
                        None => None,
                    };
                    opened
                        .read_wav(window, |_| Ok::<_, sealed::SealError>(raw.take().unwrap_or_default()))
                        .map(bytes::Bytes::from)
                        .map_err(std::io::Error::other)
                }
                .await;
                Some((bytes, next))
            }
        });
        Ok(windows.boxed())
    }

    /// Re-wraps the sealed recording `name`'s key under the current master
    /// key: its 96-byte header rewritten in place in the spool; in the store,
    /// where an object cannot be patched, the object is written again.
    /// `Ok(false)`: a plain WAV, or already under the current key.
    ///
    /// # Errors
    /// No keys, a key the ring lacks, or the spool or the store failed.
    pub async fn rewrap(&self, name: &str) -> Result<bool, StoreError> {
        use std::io::{Read as _, Seek as _, Write as _};
        let keys = self.keys.clone().ok_or(sealed::SealError::UnknownKey("none configured".into()))?;
        let path = self.spool.join(name);
        if path.exists() {
            return tokio::task::spawn_blocking(move || {
                let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
                let mut header = [0; sealed::HEADER_LEN];
                if file.read_exact(&mut header).is_err() || !sealed::is_sealed(&header) {
                    return Ok(false);
                }
                let Some(new) = sealed::rewrap(&header, &keys, rand::random())? else { return Ok(false) };
                file.rewind()?;
                file.write_all(&new)?;
                file.sync_all()?;
                Ok(true)
            })
            .await
            .map_err(std::io::Error::other)?;
        }
        let remote = self.remote.as_ref().ok_or(StoreError::NotFound)?;
        let key = Key::from(name);
        let mut bytes = remote.store.get(&key).await?.bytes().await?.to_vec();
        if !sealed::is_sealed(&bytes) {
            return Ok(false);
        }
        let Some(new) = sealed::rewrap(&bytes, &keys, rand::random())? else { return Ok(false) };
        bytes[..sealed::HEADER_LEN].copy_from_slice(&new);
        remote.store.put(&key, bytes.into()).await?;
        Ok(true)
    }

    /// The spool and the store, to read from (cheap to clone into a stream).
    fn files(&self) -> Files {
        Files { local: Arc::clone(&self.local), remote: self.remote.as_ref().map(|r| Arc::clone(&r.store)) }
    }

    /// Removes the recording from the spool and from the store; one already
    /// gone from either is not an error.
    ///
    /// # Errors
    /// The spool or the store failed.
    pub async fn remove(&self, name: &str) -> Result<(), StoreError> {
        let key = Key::from(name);
        delete_if_there(self.local.as_ref(), &key).await?;
        if let Some(remote) = &self.remote {
            delete_if_there(remote.store.as_ref(), &key).await?;
        }
        Ok(())
    }

    /// The whole recording as a blocking reader, for parsing it on a
    /// blocking thread (the waveform's peaks). Call from a blocking task.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub async fn reader(&self, name: &str) -> Result<impl std::io::Read + Send + 'static, StoreError> {
        let stored = self.stat(name).await?;
        let stream = self.read_stored(&stored, 0..stored.len()).await?;
        Ok(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)))
    }
}

/// A stream's bytes, gathered.
async fn collect(
    mut stream: BoxStream<'static, Result<bytes::Bytes, std::io::Error>>,
) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// A recording as kept: [`Recordings::stat`].
#[derive(Debug)]
pub struct Stored {
    name: String,
    raw_len: u64,
    sealed: Option<Arc<sealed::Opened>>,
}

impl Stored {
    /// Its length as a WAV.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.sealed.as_ref().map_or(self.raw_len, |opened| opened.wav_len())
    }

    /// Whether it holds nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where recordings' bytes are read from: the spool, then the store.
#[derive(Clone)]
struct Files {
    local: Arc<LocalFileSystem>,
    remote: Option<Arc<dyn ObjectStore>>,
}

impl Files {
    async fn raw_size(&self, name: &str) -> Result<u64, StoreError> {
        let key = Key::from(name);
        match self.local.head(&key).await {
            Ok(meta) => return Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let remote = self.remote.as_ref().ok_or(StoreError::NotFound)?;
        match remote.head(&key).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// The bytes `range` of the file as kept (sealed or not).
    async fn raw_read(
        &self,
        name: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, std::io::Error>>, StoreError> {
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let key = Key::from(name);
        let options =
            || GetOptions { range: Some(GetRange::Bounded(range.clone())), ..GetOptions::default() };
        // The spool first; a copy deleted after its upload a moment ago is in the store.
        let result = match self.local.get_opts(&key, options()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                let remote = self.remote.as_ref().ok_or(StoreError::NotFound)?;
                match remote.get_opts(&key, options()).await {
                    Ok(result) => result,
                    Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound),
                    Err(error) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        Ok(result.into_stream().map(|chunk| chunk.map_err(std::io::Error::other)).boxed())
    }
}

impl Remote {
    fn start(store: Arc<dyn ObjectStore>, spool: PathBuf) -> Self {
        let (queue, orders) = mpsc::unbounded_channel();
        let stats = Arc::new(UploadStats::default());
        tokio::spawn(upload_all(Arc::clone(&store), spool, orders, Arc::clone(&stats)));
        Self { store, queue, stats }
    }
}

/// An S3 client for `config` with these credentials, not tried yet (the
/// tests' and benchmarks' way to a store; the service goes through
/// [`Recordings::open`]).
///
/// # Errors
/// The configuration is incomplete.
pub fn s3_client(
    config: &StoreConfig,
    access_key_id: &str,
    secret_access_key: &str,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    s3(
        config,
        object_store::aws::AmazonS3Builder::new()
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key),
    )
}

/// An S3 client for `config`, on `builder`'s credentials.
fn s3(
    config: &StoreConfig,
    builder: object_store::aws::AmazonS3Builder,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let bucket = config
        .bucket
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("[recordings] store = \"s3\" needs a bucket"))?;
    // TLS to the store through rustls, with ring as its cryptography (the
    // `reqwest13` dependency turns rustls on in object_store's reqwest).
    // The certificate is verified against the system's roots, always.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = builder
        .with_bucket_name(bucket)
        .with_region(config.region.as_deref().unwrap_or("us-east-1"))
        .with_retry(object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: 3,
            // A read waits this long at most before the user is told the
            // store is down; uploads retry on their own, much longer.
            retry_timeout: Duration::from_secs(15),
        })
        .with_client_options(
            object_store::ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(120)),
        );
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    Ok(Arc::new(builder.build()?))
}

/// Lists, writes, reads back and deletes a small object: the bucket
/// exists, the credentials may do all four (`s3:ListBucket`,
/// `s3:PutObject`, `s3:GetObject`, `s3:DeleteObject`), the endpoint answers.
async fn probe(store: &dyn ObjectStore) -> object_store::Result<()> {
    let key = Key::from("earshot-probe");
    // A listing first: a missing bucket is "not found" here, where some
    // servers would take the write below and make the bucket.
    store.list_with_delimiter(Some(&key)).await?;
    let text = b"earshotd checks it may write here; deleted at once";
    store.put(&key, text.as_slice().into()).await?;
    let read = store.get(&key).await?.bytes().await?;
    if read.as_ref() != text {
        return Err(object_store::Error::Generic {
            store: "S3",
            source: "the store gave back other bytes than were written".into(),
        });
    }
    store.delete(&key).await
}

/// The probe's failure, in a sentence. Some of the store's answers come
/// wrapped as generic errors (a listing's), so the status and S3's error
/// code in the text decide too.
fn explain(error: &object_store::Error, endpoint: &str, bucket: &str) -> anyhow::Error {
    let text = error.to_string();
    let refused = matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "403 Forbidden",
        "401 Unauthorized",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
    ]
    .iter()
    .any(|sign| text.contains(sign));
    let no_bucket = matches!(error, object_store::Error::NotFound { .. }) || text.contains("NoSuchBucket");
    if refused {
        anyhow::anyhow!(
            "the recordings store at {endpoint} refused the credentials in AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY for bucket {bucket:?} ({error})"
        )
    } else if no_bucket {
        anyhow::anyhow!("the recordings store at {endpoint} has no bucket {bucket:?} ({error})")
    } else {
        anyhow::anyhow!("cannot use the recordings store at {endpoint}, bucket {bucket:?}: {error}")
    }
}

/// One upload waiting for its turn.
struct Waiting {
    name: String,
    attempts: u32,
    at: tokio::time::Instant,
    /// Uploaded, but deleted meanwhile: only its object is left to remove.
    undo: bool,
}

/// An upload done after its recording was deleted, whose object could not
/// be removed: retried as a removal.
#[derive(Debug, thiserror::Error)]
#[error("a recording deleted during its upload is still in the store: {0}")]
struct UndoFailed(object_store::Error);

/// The uploader: takes finished recordings from `orders` and uploads them
/// one at a time (each in parallel parts when large), retrying each failure.
async fn upload_all(
    store: Arc<dyn ObjectStore>,
    spool: PathBuf,
    mut orders: mpsc::UnboundedReceiver<String>,
    stats: Arc<UploadStats>,
) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut known: HashSet<String> = HashSet::new();
    loop {
        let next = waiting.iter().map(|w| w.at).min();
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            order = orders.recv() => match order {
                Some(name) => {
                    if known.insert(name.clone()) {
                        stats.pending.fetch_add(1, Ordering::Relaxed);
                        waiting.push(Waiting { name, attempts: 0, at: tokio::time::Instant::now(), undo: false });
                    }
                }
                None => return,
            },
            () = due => {
                let now = tokio::time::Instant::now();
                let Some(index) = waiting.iter().position(|w| w.at <= now) else { continue };
                let mut upload = waiting.swap_remove(index);
                let done = if upload.undo {
                    remove_object(store.as_ref(), &Key::from(upload.name.as_str())).await.map(|()| None)
                } else {
                    upload_one(store.as_ref(), &spool, &upload.name).await
                };
                match done {
                    Ok(Some(bytes)) => {
                        stats.uploaded.fetch_add(1, Ordering::Relaxed);
                        stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                        stats.pending.fetch_sub(1, Ordering::Relaxed);
                        known.remove(&upload.name);
                        tracing::debug!(name = upload.name, bytes, "recording uploaded");
                    }
                    Ok(None) => {
                        // Gone from the spool: uploaded before, or deleted with its call.
                        stats.pending.fetch_sub(1, Ordering::Relaxed);
                        known.remove(&upload.name);
                    }
                    Err(error) => {
                        stats.failures.fetch_add(1, Ordering::Relaxed);
                        let wait = FIRST_WAIT.saturating_mul(1 << upload.attempts.min(16)).min(LONGEST_WAIT);
                        tracing::warn!(
                            name = upload.name,
                            attempt = upload.attempts + 1,
                            retry_in_s = wait.as_secs(),
                            %error,
                            "a recording's upload failed; it stays on this machine and is retried"
                        );
                        upload.undo |= error.downcast_ref::<UndoFailed>().is_some();
                        upload.attempts += 1;
                        upload.at = tokio::time::Instant::now() + wait;
                        waiting.push(upload);
                    }
                }
            }
        }
    }
}

/// Uploads `name` from the spool, checks the store holds as many bytes,
/// and deletes the local copy. `None` when it is no longer in the spool.
async fn upload_one(store: &dyn ObjectStore, spool: &Path, name: &str) -> anyhow::Result<Option<u64>> {
    let path = spool.join(name);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let size = file.metadata().await?.len();
    let key = Key::from(name);
    if size <= MULTIPART_ABOVE {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
        file.read_to_end(&mut bytes).await?;
        store.put(&key, bytes.into()).await?;
    } else {
        let mut writer = WriteMultipart::new_with_chunk_size(store.put_multipart(&key).await?, PART_SIZE);
        let mut buffer = vec![0_u8; 1024 * 1024];
        let written = async {
            loop {
                let read = file.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                writer.wait_for_capacity(PARTS_AT_ONCE).await?;
                writer.write(&buffer[..read]);
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        match written {
            Ok(()) => {
                writer.finish().await?;
            }
            Err(error) => {
                let _ = writer.abort().await;
                return Err(error);
            }
        }
    }
    let stored = store.head(&key).await?.size;
    anyhow::ensure!(stored == size, "the store holds {stored} bytes of {name}, not {size}");
    uploaded(store, &path, &key, size).await
}

/// After an upload the store holds: the local copy goes. If it is gone
/// already, the recording was deleted while it was uploading (on request,
/// or by retention: [`Recordings::remove`] found no object yet and removed
/// the local file under the upload): then the object just written goes
/// too, and `None`, so a deleted recording is not left in the store (a
/// removal that fails is retried as such, [`UndoFailed`]).
async fn uploaded(store: &dyn ObjectStore, path: &Path, key: &Key, size: u64) -> anyhow::Result<Option<u64>> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(Some(size)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            remove_object(store, key).await?;
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Removes the object of a recording deleted during its upload; one gone
/// already is not an error.
async fn remove_object(store: &dyn ObjectStore, key: &Key) -> anyhow::Result<()> {
    Ok(delete_if_there(store, key).await.map_err(UndoFailed)?)
}

/// Deletes `key` from `store`; one not there is not an error.
async fn delete_if_there(store: &dyn ObjectStore, key: &Key) -> Result<(), object_store::Error> {
    match store.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// A recording deleted while it uploaded (its spool file removed under
    /// the upload) does not stay in the store; one that was not, does, and
    /// its local copy goes.
    #[tokio::test]
    async fn a_recording_deleted_during_its_upload_leaves_nothing_in_the_store() {
        let spool = tempfile::tempdir().unwrap();
        let store = InMemory::new();
        for (name, deleted) in [("kept.wav", false), ("deleted.wav", true)] {
            let key = Key::from(name);
            let path = spool.path().join(name);
            std::fs::write(&path, b"RIFF....").unwrap();
            store.put(&key, b"RIFF....".to_vec().into()).await.unwrap();
            if deleted {
                std::fs::remove_file(&path).unwrap();
            }
            let outcome = uploaded(&store, &path, &key, 8).await.unwrap();
            assert_eq!(outcome, if deleted { None } else { Some(8) }, "{name}");
            assert!(!path.exists(), "{name}: the local copy is gone");
            assert_eq!(store.head(&key).await.is_ok(), !deleted, "{name}: in the store");
        }
    }
}
