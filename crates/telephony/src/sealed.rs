//! Recordings sealed at rest (issue 18, part 5): the format, sans IO.
//!
//! A sealed recording is a fixed header and the recording's PCM in sealed
//! chunks. Each file has its own key (AES-256-GCM), written in the header
//! wrapped by a master key (AES-256-GCM again, the header's other fields as
//! associated data); rotating the master key re-wraps file keys and never
//! touches the audio ([`rewrap`]). A file without its master key is noise:
//! nothing in it but the header's sizes is readable.
//!
//! The PCM is cut into chunks of [`CHUNK`] bytes, each sealed on its own,
//! so a range of the recording is read by opening only the chunks it spans
//! ([`Opened::chunks_for`]), and a recording being written is sealed as it
//! goes: a chunk is sealed and appended as soon as it is full, at most
//! [`CHUNK`] bytes (a quarter of a second of a call) wait in memory. Nonces
//! follow the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár
//! 2015): a random 7-byte prefix per file, the chunk's counter, and a flag
//! on the last chunk, so chunks cannot be reordered, dropped or cut off
//! unnoticed. A file a crash left without its last chunk is mended by
//! [`repair`]: the torn chunk dropped, an empty last chunk appended; what was
//! sealed before the crash reads back.
//!
//! The WAV the users get is made on reading: a 44-byte header for the
//! recording's format and length ([`wav_header`]), then the PCM.
//!
//! Written by hand over RustCrypto's `aes-gcm` because no crate offers a
//! seekable, appendable, crash-repairable sealed stream (age, for one, seals
//! whole files and cannot be read from the middle).
//!
//! **Invariant**: no file, no clock, no randomness of its own: bytes and
//! random values in, bytes out.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};

/// PCM bytes per sealed chunk: 4 KiB, 256 ms of a stereo call.
pub const CHUNK: usize = 4096;
/// What sealing adds to each chunk: the GCM tag.
pub const TAG: usize = 16;
/// Bytes of the header.
pub const HEADER_LEN: usize = 96;
/// Bytes of the WAV header a reader puts before the PCM.
pub const WAV_HEADER_LEN: u64 = 44;

const MAGIC: &[u8; 8] = b"ESHSEAL1";
const SEALED_CHUNK: u64 = (CHUNK + TAG) as u64;

/// What can go wrong opening a sealed recording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// It does not start as a sealed recording does (a plain WAV, say).
    #[error("not a sealed recording")]
    NotSealed,
    /// Sealed under a master key this service does not have.
    #[error("sealed under master key {0}, which is not configured")]
    UnknownKey(String),
    /// The header or a chunk does not authenticate: changed, or another file's.
    #[error("the recording was altered (its {0} does not authenticate)")]
    Forged(&'static str),
    /// Its length is not one a sealed recording can have.
    #[error("the recording is cut short or padded")]
    BadLength,
}

/// A master key: wraps and unwraps the files' keys.
#[derive(Clone)]
pub struct MasterKey {
    id: [u8; 8],
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id_hex()).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// The master key of these 32 bytes. Its id (written in each file it
    /// wraps) is derived from it, so the key itself is never written.
    #[must_use]
    pub fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new().chain_update(b"earshot master key id\0").chain_update(bytes).finalize();
        let mut id = [0; 8];
        id.copy_from_slice(&digest[..8]);
        Self { id, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)) }
    }

    /// Its id, as hex: how logs and errors name it.
    #[must_use]
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The master keys: the current one seals new files; older ones still open
/// the files they sealed, until [`rewrap`] has moved every file to the current.
#[derive(Clone, Debug)]
pub struct KeyRing {
    /// Seals new files.
    pub current: MasterKey,
    /// Open files sealed before a rotation.
    pub older: Vec<MasterKey>,
}

impl KeyRing {
    fn find(&self, id: &[u8]) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(&self.older).find(|key| key.id == id)
    }
}

/// A recording's format, kept in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// 1 (voicemail) or 2 (call).
    pub channels: u16,
    /// Samples per second.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
}

/// The random values a new file needs: its key, the wrap's nonce, the
/// chunks' nonce prefix. From a CSPRNG (`rand::random`).
#[derive(Clone, Copy)]
pub struct Fresh {
    /// The file's key.
    pub file_key: [u8; 32],
    /// The nonce wrapping it.
    pub wrap_nonce: [u8; 12],
    /// The prefix of every chunk's nonce.
    pub prefix: [u8; 7],
}

impl Fresh {
    /// Fresh values from the thread's CSPRNG.
    #[must_use]
    pub fn random() -> Self {
        Self { file_key: rand::random(), wrap_nonce: rand::random(), prefix: rand::random() }
    }
}

/// The header's fields the wrap authenticates: all but the wrap itself.
fn header_aad(header: &[u8; HEADER_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + 8 + 20);
    aad.extend_from_slice(&header[0..16]);
    aad.extend_from_slice(&header[76..96]);
    aad
}

fn chunk_nonce(prefix: &[u8; 7], counter: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0; 12];
    nonce[..7].copy_from_slice(prefix);
    nonce[7..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Seals a recording as it is written: PCM in, sealed bytes out to append to the file.
pub struct Sealer {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    counter: u32,
    pending: Vec<u8>,
}

impl Sealer {
    /// A new file sealed under `keys.current`: the sealer, and the header to
    /// write first.
    ///
    /// # Panics
    /// Never: sealing a 32-byte key cannot fail.
    #[must_use]
    pub fn new(keys: &KeyRing, format: Format, fresh: Fresh) -> (Self, [u8; HEADER_LEN]) {
        let mut header = [0; HEADER_LEN];
        header[0..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&keys.current.id);
        header[16..28].copy_from_slice(&fresh.wrap_nonce);
        header[76..83].copy_from_slice(&fresh.prefix);
        header[84..86].copy_from_slice(&format.channels.to_le_bytes());
        header[86..90].copy_from_slice(&format.sample_rate.to_le_bytes());
        header[90..92].copy_from_slice(&format.bits_per_sample.to_le_bytes());
        header[92..96].copy_from_slice(&u32::try_from(CHUNK).unwrap_or(u32::MAX).to_le_bytes());
        let wrapped = keys
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&fresh.wrap_nonce),
                Payload { msg: &fresh.file_key, aad: &header_aad(&header) },
            )
            .expect("a 32-byte key seals");
        header[28..76].copy_from_slice(&wrapped);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&fresh.file_key));
        (Self { cipher, prefix: fresh.prefix, counter: 0, pending: Vec::with_capacity(CHUNK) }, header)
    }

    fn seal(&mut self, last: bool, out: &mut Vec<u8>) {
        let nonce = chunk_nonce(&self.prefix, self.counter, last);
        let take = self.pending.len().min(CHUNK);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), &self.pending[..take])
            .expect("AES-GCM seals any chunk this size");
        out.extend_from_slice(&sealed);
        self.pending.drain(..take);
        self.counter = self.counter.wrapping_add(1);
    }

    /// Takes `pcm`; appends to `out` each chunk it fills, sealed.
    pub fn push(&mut self, pcm: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(pcm);
        while self.pending.len() >= CHUNK {
            self.seal(false, out);
        }
    }

    /// PCM bytes waiting for their chunk to fill (lost if the process dies now).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Seals what is pending as the last chunk (maybe empty), appended to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.seal(true, out);
    }
}

/// A sealed recording opened: where its chunks are, and the key to read them.
pub struct Opened {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    /// The recording's format.
    pub format: Format,
    /// Sealed chunks, the last one included.
    pub chunks: u64,
    /// PCM bytes.
    pub pcm_len: u64,
}

/// Whether `header` (a file's first bytes) starts a sealed recording.
#[must_use]
pub fn is_sealed(header: &[u8]) -> bool {
    header.starts_with(MAGIC)
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("format", &self.format)
            .field("chunks", &self.chunks)
            .field("pcm_len", &self.pcm_len)
            .finish_non_exhaustive()
    }
}

fn read_header(header: &[u8]) -> Result<&[u8; HEADER_LEN], SealError> {
    let header: &[u8; HEADER_LEN] =
        header.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(SealError::NotSealed)?;
    if &header[0..8] != MAGIC {
        return Err(SealError::NotSealed);
    }
    Ok(header)
}

fn unwrap_key(header: &[u8; HEADER_LEN], keys: &KeyRing) -> Result<[u8; 32], SealError> {
    let master = keys
        .find(&header[8..16])
        .ok_or_else(|| SealError::UnknownKey(header[8..16].iter().map(|b| format!("{b:02x}")).collect()))?;
    let key = master
        .cipher
        .decrypt(
            Nonce::from_slice(&header[16..28]),
            Payload { msg: &header[28..76], aad: &header_aad(header) },
        )
        .map_err(|_| SealError::Forged("header"))?;
    key.try_into().map_err(|_| SealError::Forged("header"))
}

/// Opens the sealed recording whose first bytes are `header` and whose
/// length is `file_len`.
///
/// # Errors
/// Not sealed, sealed under a key `keys` lacks, a forged header, or a
/// length no sealed recording has (a crash left it: [`repair`] it).
pub fn open(header: &[u8], file_len: u64, keys: &KeyRing) -> Result<Opened, SealError> {
    let header = read_header(header)?;
    let file_key = unwrap_key(header, keys)?;
    let mut prefix = [0; 7];
    prefix.copy_from_slice(&header[76..83]);
    let format = Format {
        channels: u16::from_le_bytes([header[84], header[85]]),
        sample_rate: u32::from_le_bytes([header[86], header[87], header[88], header[89]]),
        bits_per_sample: u16::from_le_bytes([header[90], header[91]]),
    };
    if u32::from_le_bytes([header[92], header[93], header[94], header[95]]) as usize != CHUNK {
        return Err(SealError::Forged("header"));
    }
    let body = file_len.checked_sub(HEADER_LEN as u64 + TAG as u64).ok_or(SealError::BadLength)?;
    let (full, last) = (body / SEALED_CHUNK, body % SEALED_CHUNK);
    if last >= CHUNK as u64 {
        return Err(SealError::BadLength);
    }
    Ok(Opened {
        cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&file_key)),
        prefix,
        format,
        chunks: full + 1,
        pcm_len: full * CHUNK as u64 + last,
    })
}

impl Opened {
    /// Bytes of the WAV a reader gets: the WAV header, then the PCM.
    #[must_use]
    pub const fn wav_len(&self) -> u64 {
        WAV_HEADER_LEN + self.pcm_len
    }

    /// The chunks holding `pcm` (a range of PCM bytes, not empty), and the
    /// range of the file they are in. A range that reaches the end takes the
    /// last chunk too (maybe empty): a file cut short does not open there.
    #[must_use]
    pub fn chunks_for(&self, pcm: std::ops::Range<u64>) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
        let first = (pcm.start / CHUNK as u64).min(self.chunks - 1);
        let last = if pcm.end >= self.pcm_len {
            self.chunks - 1
        } else {
            ((pcm.end.max(pcm.start + 1) - 1) / CHUNK as u64).min(self.chunks - 1)
        };
        let start = HEADER_LEN as u64 + first * SEALED_CHUNK;
        let end = (HEADER_LEN as u64 + (last + 1) * SEALED_CHUNK).min(self.sealed_len());
        (first..last + 1, start..end)
    }

    /// The sealed file's length.
    #[must_use]
    pub const fn sealed_len(&self) -> u64 {
        HEADER_LEN as u64 + (self.chunks - 1) * SEALED_CHUNK + (self.pcm_len % CHUNK as u64) + TAG as u64
    }

    /// The PCM of chunks `chunks`, from their sealed bytes (as
    /// [`Self::chunks_for`] located them).
    ///
    /// # Errors
    /// A chunk does not authenticate.
    pub fn open_chunks(&self, chunks: std::ops::Range<u64>, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut pcm = Vec::with_capacity(sealed.len());
        let mut rest = sealed;
        for index in chunks {
            let last = index + 1 == self.chunks;
            let size = if last { rest.len() } else { (SEALED_CHUNK as usize).min(rest.len()) };
            let counter = u32::try_from(index).map_err(|_| SealError::BadLength)?;
            let nonce = chunk_nonce(&self.prefix, counter, last);
            let plain = self
                .cipher
                .decrypt(Nonce::from_slice(&nonce), &rest[..size])
                .map_err(|_| SealError::Forged("audio"))?;
            pcm.extend_from_slice(&plain);
            rest = &rest[size..];
        }
        Ok(pcm)
    }

    /// The bytes of the sealed file [`Self::read_wav`] reads for the WAV
    /// bytes `range`; `None` when they lie in the WAV header alone.
    #[must_use]
    pub fn raw_range_for(&self, range: std::ops::Range<u64>) -> Option<std::ops::Range<u64>> {
        let range = range.start.min(self.wav_len())..range.end.min(self.wav_len());
        let pcm =
            range.start.max(WAV_HEADER_LEN) - WAV_HEADER_LEN..range.end.max(WAV_HEADER_LEN) - WAV_HEADER_LEN;
        (!pcm.is_empty()).then(|| self.chunks_for(pcm).1)
    }

    /// The WAV bytes `range` (of [`Self::wav_len`]), given a way to read
    /// the sealed file's bytes.
    ///
    /// # Errors
    /// A chunk does not authenticate, or `read` fails.
    pub fn read_wav<E: From<SealError>>(
        &self,
        range: std::ops::Range<u64>,
        mut read: impl FnMut(std::ops::Range<u64>) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let mut out = Vec::new();
        let range = range.start.min(self.wav_len())..range.end.min(self.wav_len());
        if range.start < WAV_HEADER_LEN {
            let header = wav_header(self.format, self.pcm_len);
            out.extend_from_slice(&header[range.start as usize..range.end.min(WAV_HEADER_LEN) as usize]);
        }
        let pcm =
            range.start.max(WAV_HEADER_LEN) - WAV_HEADER_LEN..range.end.max(WAV_HEADER_LEN) - WAV_HEADER_LEN;
        if !pcm.is_empty() {
            let (chunks, bytes) = self.chunks_for(pcm.clone());
            let first = chunks.start * CHUNK as u64;
            let plain = self.open_chunks(chunks, &read(bytes)?)?;
            let from = usize::try_from(pcm.start - first).unwrap_or(usize::MAX);
            let to = usize::try_from(pcm.end - first).unwrap_or(usize::MAX).min(plain.len());
            out.extend_from_slice(&plain[from.min(to)..to]);
        }
        Ok(out)
    }
}

/// The 44-byte header of a PCM WAV of `format` holding `pcm_len` bytes.
#[must_use]
pub fn wav_header(format: Format, pcm_len: u64) -> [u8; 44] {
    let data = u32::try_from(pcm_len).unwrap_or(u32::MAX - 36);
    let block = format.channels * format.bits_per_sample / 8;
    let mut h = [0; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16_u32.to_le_bytes());
    h[20..22].copy_from_slice(&1_u16.to_le_bytes());
    h[22..24].copy_from_slice(&format.channels.to_le_bytes());
    h[24..28].copy_from_slice(&format.sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(format.sample_rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&format.bits_per_sample.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// How to mend a sealed recording a crash left unfinished.
#[derive(Debug, PartialEq, Eq)]
pub struct Repair {
    /// Cut the file to this length (dropping a torn or forged last chunk).
    pub truncate_to: u64,
    /// Then append these bytes: an empty last chunk.
    pub append: Vec<u8>,
}

/// What to do with a sealed recording of `file_len` bytes (`read` gives its
/// bytes in a range) so that it opens: `None` when it already does, else
/// keep its whole chunks that authenticate and mark the end.
///
/// # Errors
/// Not sealed, sealed under a key `keys` lacks, or `read` fails.
pub fn repair<E: From<SealError>>(
    header: &[u8],
    file_len: u64,
    keys: &KeyRing,
    mut read: impl FnMut(std::ops::Range<u64>) -> Result<Vec<u8>, E>,
) -> Result<Option<Repair>, E> {
    let header_bytes = read_header(header)?;
    let file_key = unwrap_key(header_bytes, keys)?;
    // A finished file opens, and its last chunk is marked last.
    if let Ok(opened) = open(header, file_len, keys) {
        let (chunks, bytes) = opened.chunks_for(opened.pcm_len.saturating_sub(1)..opened.pcm_len.max(1));
        let last = chunks.end - 1..chunks.end;
        let bytes = HEADER_LEN as u64 + last.start * SEALED_CHUNK..bytes.end;
        if opened.open_chunks(last, &read(bytes)?).is_ok() {
            return Ok(None);
        }
    }
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&file_key));
    let mut prefix = [0; 7];
    prefix.copy_from_slice(&header_bytes[76..83]);
    let mut whole = file_len.saturating_sub(HEADER_LEN as u64) / SEALED_CHUNK;
    // The last whole chunk may be torn: keep chunks from the last one that opens (a crash tears one write).
    for _ in 0..2 {
        if whole == 0 {
            break;
        }
        let start = HEADER_LEN as u64 + (whole - 1) * SEALED_CHUNK;
        let counter = u32::try_from(whole - 1).map_err(|_| SealError::BadLength)?;
        let sealed = read(start..start + SEALED_CHUNK)?;
        if cipher.decrypt(Nonce::from_slice(&chunk_nonce(&prefix, counter, false)), &sealed[..]).is_ok() {
            break;
        }
        whole -= 1;
    }
    let counter = u32::try_from(whole).map_err(|_| SealError::BadLength)?;
    let append = cipher
        .encrypt(Nonce::from_slice(&chunk_nonce(&prefix, counter, true)), &[][..])
        .expect("AES-GCM seals an empty chunk");
    Ok(Some(Repair { truncate_to: HEADER_LEN as u64 + whole * SEALED_CHUNK, append }))
}

/// The header re-wrapped under `keys.current`, or `None` when it already is.
/// The audio is untouched: rotating a master key rewrites 96 bytes a file.
///
/// # Errors
/// Not sealed, sealed under a key `keys` lacks, or a forged header.
pub fn rewrap(
    header: &[u8],
    keys: &KeyRing,
    wrap_nonce: [u8; 12],
) -> Result<Option<[u8; HEADER_LEN]>, SealError> {
    let old = read_header(header)?;
    if old[8..16] == keys.current.id {
        return Ok(None);
    }
    let file_key = unwrap_key(old, keys)?;
    let mut new = *old;
    new[8..16].copy_from_slice(&keys.current.id);
    new[16..28].copy_from_slice(&wrap_nonce);
    let wrapped = keys
        .current
        .cipher
        .encrypt(Nonce::from_slice(&wrap_nonce), Payload { msg: &file_key, aad: &header_aad(&new) })
        .expect("a 32-byte key seals");
    new[28..76].copy_from_slice(&wrapped);
    Ok(Some(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEREO: Format = Format { channels: 2, sample_rate: 8_000, bits_per_sample: 16 };

    fn ring(byte: u8) -> KeyRing {
        KeyRing { current: MasterKey::new(&[byte; 32]), older: Vec::new() }
    }

    fn fresh(seed: u8) -> Fresh {
        Fresh {
            file_key: [seed; 32],
            wrap_nonce: [seed.wrapping_add(1); 12],
            prefix: [seed.wrapping_add(2); 7],
        }
    }

    /// A recognisable PCM: a 440 Hz tone, stereo, `frames` frames.
    fn tone(frames: usize) -> Vec<u8> {
        (0..frames)
            .flat_map(|i| {
                let s = ((i as f64 * 440.0 * std::f64::consts::TAU / 8_000.0).sin() * 12_000.0) as i16;
                [s.to_le_bytes(), s.to_le_bytes()].concat()
            })
            .collect()
    }

    /// Seals `pcm` pushed in pieces of `piece` bytes.
    fn seal(keys: &KeyRing, pcm: &[u8], piece: usize, finish: bool) -> Vec<u8> {
        let (mut sealer, header) = Sealer::new(keys, STEREO, fresh(7));
        let mut file = header.to_vec();
        for part in pcm.chunks(piece.max(1)) {
            sealer.push(part, &mut file);
        }
        if finish {
            sealer.finish(&mut file);
        }
        file
    }

    fn read_all(keys: &KeyRing, file: &[u8]) -> Result<Vec<u8>, SealError> {
        let opened = open(file, file.len() as u64, keys)?;
        opened.read_wav(0..opened.wav_len(), |r| {
            Ok::<_, SealError>(file[r.start as usize..r.end as usize].to_vec())
        })
    }

    #[test]
    fn a_sealed_recording_reads_back_as_the_wav_whole_and_by_any_range() {
        let keys = ring(1);
        for frames in [0, 1, 1023, 1024, 1025, 20_000] {
            let pcm = tone(frames);
            let file = seal(&keys, &pcm, 333, true);
            let wav = read_all(&keys, &file).unwrap();
            assert_eq!(&wav[..44], &wav_header(STEREO, pcm.len() as u64), "{frames}");
            assert_eq!(&wav[44..], &pcm[..], "{frames}");
            let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
            assert_eq!(reader.len() as usize, frames * 2);
            let opened = open(&file, file.len() as u64, &keys).unwrap();
            assert_eq!(opened.sealed_len(), file.len() as u64);
            for (start, end) in [(0, 1), (10, 60), (44, 45), (4000, 4200), (4140, 8236), (0, 1 << 20)] {
                let want = &wav[start.min(wav.len())..end.min(wav.len())];
                let got = opened
                    .read_wav(start as u64..end as u64, |r| {
                        Ok::<_, SealError>(file[r.start as usize..r.end as usize].to_vec())
                    })
                    .unwrap();
                assert_eq!(got, want, "{frames} frames, {start}..{end}");
            }
        }
    }

    #[test]
    fn without_its_key_a_recording_is_noise() {
        let pcm = tone(40_000);
        let file = seal(&ring(1), &pcm, 4096, true);
        assert_eq!(read_all(&ring(2), &file).unwrap_err(), SealError::UnknownKey(ring(1).current.id_hex()));
        let body = &file[HEADER_LEN..];
        assert!(!body.windows(4).any(|w| w == b"RIFF" || w == b"data"));
        // Every byte value about as often as any other: ~8 bits of entropy a byte.
        let mut counts = [0_f64; 256];
        for b in body {
            counts[*b as usize] += 1.0;
        }
        let n = body.len() as f64;
        let entropy: f64 = counts.iter().filter(|c| **c > 0.0).map(|c| -(c / n) * (c / n).log2()).sum();
        assert!(entropy > 7.99, "{entropy}");
        // The tone is not in it: the sealed bytes, read as samples, do not follow it.
        let samples = |bytes: &[u8]| -> Vec<f64> {
            bytes.chunks_exact(2).map(|b| f64::from(i16::from_le_bytes([b[0], b[1]]))).collect()
        };
        let (a, b) = (samples(&pcm[..body.len().min(pcm.len())]), samples(body));
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let norm = (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|y| y * y).sum::<f64>()).sqrt();
        assert!((dot / norm).abs() < 0.02, "correlation {}", dot / norm);
    }

    #[test]
    fn a_changed_byte_a_dropped_chunk_or_a_cut_is_refused() {
        let keys = ring(1);
        let file = seal(&keys, &tone(10_000), 1000, true);
        let mut flipped = file.clone();
        flipped[HEADER_LEN + 5000] ^= 1;
        assert_eq!(read_all(&keys, &flipped).unwrap_err(), SealError::Forged("audio"));
        let mut header = file.clone();
        header[85] ^= 1; // the channels
        assert_eq!(read_all(&keys, &header).unwrap_err(), SealError::Forged("header"));
        // A whole chunk dropped: the counters no longer match.
        let mut dropped = file[..HEADER_LEN].to_vec();
        dropped.extend_from_slice(&file[HEADER_LEN + SEALED_CHUNK as usize..]);
        assert!(read_all(&keys, &dropped).is_err());
        // Cut after a whole chunk: its last chunk is not marked last.
        let cut = &file[..HEADER_LEN + 2 * SEALED_CHUNK as usize + TAG];
        assert!(read_all(&keys, cut).is_err());
        let cut = &file[..HEADER_LEN + 2 * SEALED_CHUNK as usize];
        assert!(read_all(&keys, cut).is_err());
        assert_eq!(read_all(&keys, b"RIFF....WAVEfmt "), Err(SealError::NotSealed));
    }

    /// Mends `file` as the service does at start-up.
    fn mend(keys: &KeyRing, file: &mut Vec<u8>) -> bool {
        let snapshot = file.clone();
        let plan = repair(&snapshot, snapshot.len() as u64, keys, |r| {
            Ok::<_, SealError>(snapshot[r.start as usize..(r.end as usize).min(snapshot.len())].to_vec())
        })
        .unwrap();
        let Some(plan) = plan else { return false };
        file.truncate(plan.truncate_to as usize);
        file.extend_from_slice(&plan.append);
        true
    }

    #[test]
    fn a_crash_mid_call_leaves_every_sealed_chunk_readable_after_repair() {
        let keys = ring(1);
        let pcm = tone(30_000); // 120,000 bytes: 29 whole chunks and some
        let unfinished = seal(&keys, &pcm, 320, false);
        let whole = (unfinished.len() - HEADER_LEN) / SEALED_CHUNK as usize;
        assert_eq!(whole, pcm.len() / CHUNK);
        // The crash tore the last write half-way, or not at all.
        for torn in [0, 1, 100, SEALED_CHUNK as usize - 1] {
            let mut file = unfinished.clone();
            file.extend_from_slice(&vec![0xAB; torn]);
            assert!(mend(&keys, &mut file), "torn {torn}");
            let wav = read_all(&keys, &file).unwrap();
            assert_eq!(&wav[44..], &pcm[..whole * CHUNK], "torn {torn}");
            assert!(!mend(&keys, &mut file), "repaired once, it needs no more");
        }
        // A last whole chunk torn by bytes changed in it is dropped too.
        let mut file = unfinished;
        let at = file.len() - 10;
        file[at] ^= 0xFF;
        assert!(mend(&keys, &mut file));
        assert_eq!(&read_all(&keys, &file).unwrap()[44..], &pcm[..(whole - 1) * CHUNK]);
        // Killed before the first chunk filled: an empty recording, readable.
        let mut file = seal(&keys, &tone(100), 320, false);
        assert!(mend(&keys, &mut file));
        assert_eq!(read_all(&keys, &file).unwrap().len(), 44);
        // Finished files, long and short and empty, need nothing.
        for frames in [0, 10, 1024, 5000] {
            let mut file = seal(&keys, &tone(frames), 320, true);
            assert!(!mend(&keys, &mut file), "{frames}");
        }
    }

    #[test]
    fn rotating_the_master_key_rewraps_headers_only() {
        let old = ring(1);
        let pcm = tone(9_000);
        let file = seal(&old, &pcm, 500, true);
        let rotated = KeyRing { current: MasterKey::new(&[9; 32]), older: vec![old.current.clone()] };
        // Before the rewrap, the old key still opens it through the ring.
        assert_eq!(&read_all(&rotated, &file).unwrap()[44..], &pcm[..]);
        let header = rewrap(&file, &rotated, [3; 12]).unwrap().expect("sealed under the old key");
        let mut moved = header.to_vec();
        moved.extend_from_slice(&file[HEADER_LEN..]);
        assert_eq!(&moved[HEADER_LEN..], &file[HEADER_LEN..], "the audio is untouched");
        let only_new = KeyRing { current: rotated.current, older: Vec::new() };
        assert_eq!(&read_all(&only_new, &moved).unwrap()[44..], &pcm[..]);
        assert_eq!(rewrap(&moved, &only_new, [4; 12]), Ok(None));
        assert!(matches!(read_all(&old, &moved), Err(SealError::UnknownKey(_))));
    }

    #[test]
    fn keys_are_named_by_an_id_that_does_not_reveal_them() {
        let key = MasterKey::new(&[5; 32]);
        assert_eq!(key.id_hex().len(), 16);
        assert_ne!(key.id_hex(), MasterKey::new(&[6; 32]).id_hex());
        assert!(!format!("{key:?}").contains("05050505"));
    }
}
