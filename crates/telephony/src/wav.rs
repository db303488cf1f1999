//! Recording files: WAV, PCM 16-bit, 8 kHz, written through `hound` so that a
//! crash leaves a playable file, and [`repair`] for a file a crash left behind.
//!
//! A WAV header holds the data length, which is only known at the end. The
//! writer hands samples to the file and rewrites the header every 100 ms of
//! audio, so a killed process leaves a valid file up to the last flush and
//! loses at most the 100 ms after it; [`repair`], run at start-up, also
//! recovers the samples written after it. (Every second cost 0.6 % of a
//! core for 200 calls and lost up to a second; every 100 ms costs 1.25 %:
//! docs/PERFORMANCE.md, `benches/wav_flush.rs`.)

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Frames between flushes and header updates: 100 ms at 8 kHz.
pub const FLUSH_EVERY: u64 = 800;

/// What can go wrong with a recording file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Reading or writing the file failed.
    #[error("recording file: {0}")]
    Io(#[from] std::io::Error),
    /// `hound` refused the file.
    #[error("recording file: {0}")]
    Wav(#[from] hound::Error),
    /// The file is not a WAV this service wrote (no RIFF/WAVE header or no data chunk).
    #[error("not a recording this service can repair: {0}")]
    NotRepairable(&'static str),
}

/// A recording being written.
pub struct RecordingWriter {
    sink: Sink,
    frames: u64,
    channels: u16,
    flush_every: u64,
}

/// Where the frames go: a WAV, or a sealed recording ([`crate::sealed`]).
enum Sink {
    Plain(hound::WavWriter<BufWriter<File>>),
    Sealed { file: File, sealer: Box<crate::sealed::Sealer>, out: Vec<u8>, pcm: Vec<u8> },
}

impl RecordingWriter {
    /// Creates `path` for `channels` channels (2 for calls, 1 for voicemail).
    pub fn create(path: &Path, channels: u16) -> Result<Self, WavError> {
        Self::create_flushing(path, channels, FLUSH_EVERY)
    }

    /// [`Self::create`], handing samples to the file and updating its header
    /// every `flush_every` frames (8 000 a second) instead: what a crash can
    /// lose against what the writes cost (docs/PERFORMANCE.md).
    pub fn create_flushing(path: &Path, channels: u16, flush_every: u64) -> Result<Self, WavError> {
        let flush_every = flush_every.max(1);
        let spec = hound::WavSpec {
            channels,
            sample_rate: earshot_policy::Recording::SAMPLE_RATE,
            bits_per_sample: earshot_policy::Recording::BITS_PER_SAMPLE,
            sample_format: hound::SampleFormat::Int,
        };
        // One flush's worth of audio per write, not hound's default 8 KiB.
        let buffer = usize::try_from(flush_every).unwrap_or(8_000) * usize::from(channels) * 2;
        let file = BufWriter::with_capacity(buffer, File::create(path)?);
        Ok(Self { sink: Sink::Plain(hound::WavWriter::new(file, spec)?), frames: 0, channels, flush_every })
    }

    /// [`Self::create`], sealed under `keys.current` ([`crate::sealed`]): the
    /// header first, then each chunk as it fills, written out every
    /// [`FLUSH_EVERY`] frames; a crash loses what had not filled a chunk.
    pub fn create_sealed(
        path: &Path,
        channels: u16,
        keys: &crate::sealed::KeyRing,
    ) -> Result<Self, WavError> {
        let format = crate::sealed::Format {
            channels,
            sample_rate: earshot_policy::Recording::SAMPLE_RATE,
            bits_per_sample: earshot_policy::Recording::BITS_PER_SAMPLE,
        };
        let (sealer, header) = crate::sealed::Sealer::new(keys, format, crate::sealed::Fresh::random());
        let mut file = File::create(path)?;
        file.write_all(&header)?;
        let sink = Sink::Sealed { file, sealer: Box::new(sealer), out: Vec::new(), pcm: Vec::new() };
        Ok(Self { sink, frames: 0, channels, flush_every: FLUSH_EVERY })
    }

    /// Appends stereo frames (a mono file takes the left channel).
    pub fn write_frames(&mut self, frames: &[[i16; 2]]) -> Result<(), WavError> {
        let channels = usize::from(self.channels.clamp(1, 2));
        let mut rest = frames;
        while !rest.is_empty() {
            // Up to the next flush point, through hound's bulk 16-bit writer.
            let to_flush =
                usize::try_from(self.flush_every - self.frames % self.flush_every).unwrap_or(usize::MAX);
            let (now, later) = rest.split_at(rest.len().min(to_flush));
            self.frames += now.len() as u64;
            let flush = self.frames.is_multiple_of(self.flush_every);
            match &mut self.sink {
                Sink::Plain(writer) => {
                    let count = u32::try_from(now.len() * channels).unwrap_or(u32::MAX);
                    let mut bulk = writer.get_i16_writer(count);
                    for frame in now {
                        for sample in &frame[..channels] {
                            bulk.write_sample(*sample);
                        }
                    }
                    bulk.flush()?;
                    if flush {
                        // Samples reach the file and the header counts them: a crash after
                        // this leaves a playable file at least this long.
                        writer.flush()?;
                    }
                }
                Sink::Sealed { file, sealer, out, pcm } => {
                    pcm.clear();
                    for frame in now {
                        for sample in &frame[..channels] {
                            pcm.extend_from_slice(&sample.to_le_bytes());
                        }
                    }
                    sealer.push(pcm, out);
                    if flush && !out.is_empty() {
                        // Whole sealed chunks reach the file: repair keeps them all.
                        file.write_all(out)?;
                        out.clear();
                    }
                }
            }
            rest = later;
        }
        Ok(())
    }

    /// Frames written so far.
    #[must_use]
    pub const fn frames(&self) -> u64 {
        self.frames
    }

    /// Finishes the file (the header counts every frame; a sealed file gets its last chunk).
    pub fn finish(self) -> Result<(), WavError> {
        match self.sink {
            Sink::Plain(writer) => writer.finalize()?,
            Sink::Sealed { mut file, sealer, mut out, .. } => {
                sealer.finish(&mut out);
                file.write_all(&out)?;
                file.flush()?;
            }
        }
        Ok(())
    }
}

/// What [`repair`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// The header already matched the file.
    AlreadyValid,
    /// The header now counts every whole frame in the file.
    Repaired {
        /// Data bytes the header said.
        before: u32,
        /// Data bytes it says now.
        after: u32,
    },
}

/// The WAV `wav` (16-bit PCM) sealed under `keys.current`: for recordings
/// that arrive whole (an import).
pub fn seal_wav(wav: &[u8], keys: &crate::sealed::KeyRing) -> Result<Vec<u8>, WavError> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav))?;
    let spec = reader.spec();
    let format = crate::sealed::Format {
        channels: spec.channels,
        sample_rate: spec.sample_rate,
        bits_per_sample: spec.bits_per_sample,
    };
    let (mut sealer, header) = crate::sealed::Sealer::new(keys, format, crate::sealed::Fresh::random());
    let mut out = header.to_vec();
    let mut pcm = Vec::with_capacity(crate::sealed::CHUNK);
    for sample in reader.samples::<i16>() {
        pcm.extend_from_slice(&sample?.to_le_bytes());
        if pcm.len() >= crate::sealed::CHUNK {
            sealer.push(&pcm, &mut out);
            pcm.clear();
        }
    }
    sealer.push(&pcm, &mut out);
    sealer.finish(&mut out);
    Ok(out)
}

/// Mends the sealed recording at `path` a crash left behind
/// ([`crate::sealed::repair`]): its whole chunks kept, its end marked.
pub fn repair_sealed(path: &Path, keys: &crate::sealed::KeyRing) -> Result<Repair, WavError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let mut header = [0u8; crate::sealed::HEADER_LEN];
    file.read_exact(&mut header).map_err(|_| WavError::NotRepairable("shorter than a sealed header"))?;
    let plan = crate::sealed::repair(&header, length, keys, |range| {
        let mut bytes = vec![0; usize::try_from(range.end - range.start).unwrap_or(0)];
        file.seek(SeekFrom::Start(range.start))?;
        file.read_exact(&mut bytes)?;
        Ok::<_, SealedIo>(bytes)
    })
    .map_err(|error| match error {
        SealedIo::Io(error) => WavError::Io(error),
        SealedIo::Sealed(_) => WavError::NotRepairable("a sealed recording this service cannot open"),
    })?;
    let Some(plan) = plan else { return Ok(Repair::AlreadyValid) };
    file.set_len(plan.truncate_to)?;
    file.seek(SeekFrom::End(0))?;
    file.write_all(&plan.append)?;
    file.sync_all()?;
    let pcm = |sealed_len: u64| {
        crate::sealed::open(&header, sealed_len, keys)
            .map_or(0, |o| u32::try_from(o.pcm_len).unwrap_or(u32::MAX))
    };
    Ok(Repair::Repaired { before: 0, after: pcm(plan.truncate_to + plan.append.len() as u64) })
}

/// Errors of reading a sealed file: the file's, or the format's.
#[derive(Debug, thiserror::Error)]
enum SealedIo {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sealed(#[from] crate::sealed::SealError),
}

/// Makes the header of the WAV at `path` match what the file holds, cutting
/// a trailing partial frame. For files a crash left behind.
pub fn repair(path: &Path) -> Result<Repair, WavError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let mut header = [0u8; 12];
    file.read_exact(&mut header).map_err(|_| WavError::NotRepairable("shorter than a RIFF header"))?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(WavError::NotRepairable("no RIFF/WAVE header"));
    }
    let mut block_align = 0u64;
    let mut position = 12u64;
    loop {
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(position))?;
        file.read_exact(&mut chunk).map_err(|_| WavError::NotRepairable("no data chunk"))?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        if &chunk[0..4] == b"fmt " {
            let mut fmt = [0u8; 16];
            file.read_exact(&mut fmt)?;
            block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]]));
        }
        if &chunk[0..4] == b"data" {
            if block_align == 0 {
                return Err(WavError::NotRepairable("data before fmt"));
            }
            let data_start = position + 8;
            let available = length.saturating_sub(data_start);
            let whole = available - available % block_align;
            let before = u32::try_from(size).unwrap_or(u32::MAX);
            let after = u32::try_from(whole).map_err(|_| WavError::NotRepairable("over 4 GiB"))?;
            if before == after && length == data_start + whole {
                return Ok(Repair::AlreadyValid);
            }
            file.set_len(data_start + whole)?;
            file.seek(SeekFrom::Start(4))?;
            let riff =
                u32::try_from(data_start + whole - 8).map_err(|_| WavError::NotRepairable("over 4 GiB"))?;
            file.write_all(&riff.to_le_bytes())?;
            file.seek(SeekFrom::Start(position + 4))?;
            file.write_all(&after.to_le_bytes())?;
            file.sync_all()?;
            return Ok(Repair::Repaired { before, after });
        }
        position += 8 + size + size % 2;
        if position >= length {
            return Err(WavError::NotRepairable("no data chunk"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::{KeyRing, MasterKey, open};

    fn keys() -> KeyRing {
        KeyRing { current: MasterKey::new(&[3; 32]), older: Vec::new() }
    }

    fn frames(count: usize) -> Vec<[i16; 2]> {
        (0..count).map(|i| [i as i16, -(i as i16)]).collect()
    }

    fn pcm(frames: &[[i16; 2]]) -> Vec<u8> {
        frames.iter().flat_map(|f| [f[0].to_le_bytes(), f[1].to_le_bytes()].concat()).collect()
    }

    fn read_back(path: &Path) -> Vec<u8> {
        let file = std::fs::read(path).unwrap();
        let opened = open(&file, file.len() as u64, &keys()).unwrap();
        let wav = opened
            .read_wav(0..opened.wav_len(), |r| {
                Ok::<_, crate::sealed::SealError>(file[r.start as usize..r.end as usize].to_vec())
            })
            .unwrap();
        wav[44..].to_vec()
    }

    #[test]
    fn a_sealed_recording_is_written_as_the_call_goes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.sealed");
        let audio = frames(20_000);
        let mut writer = RecordingWriter::create_sealed(&path, 2, &keys()).unwrap();
        for part in audio.chunks(160) {
            writer.write_frames(part).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(read_back(&path), pcm(&audio));
        assert_eq!(repair_sealed(&path, &keys()).unwrap(), Repair::AlreadyValid);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(4).any(|w| w == b"RIFF"), "no WAV on the disk");
    }

    #[test]
    fn a_whole_wav_is_sealed_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.wav");
        let mut writer = RecordingWriter::create(&path, 2).unwrap();
        writer.write_frames(&frames(9_999)).unwrap();
        writer.finish().unwrap();
        let wav = std::fs::read(&path).unwrap();
        let sealed = seal_wav(&wav, &keys()).unwrap();
        let opened = open(&sealed, sealed.len() as u64, &keys()).unwrap();
        let back = opened
            .read_wav(0..opened.wav_len(), |r| {
                Ok::<_, crate::sealed::SealError>(sealed[r.start as usize..r.end as usize].to_vec())
            })
            .unwrap();
        assert_eq!(back, wav, "the WAV comes back byte for byte");
    }

    #[test]
    fn a_sealed_recording_killed_mid_call_keeps_what_was_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.sealed");
        let audio = frames(12_345);
        let mut writer = RecordingWriter::create_sealed(&path, 2, &keys()).unwrap();
        for part in audio.chunks(160) {
            writer.write_frames(part).unwrap();
        }
        std::mem::forget(writer); // killed: nothing more reaches the file
        let Repair::Repaired { after, .. } = repair_sealed(&path, &keys()).unwrap() else {
            panic!("an unfinished recording is repaired");
        };
        let kept = read_back(&path);
        assert_eq!(kept.len(), after as usize);
        assert_eq!(&kept[..], &pcm(&audio)[..kept.len()], "what was sealed reads back unchanged");
        // Lost: less than a chunk and a flush (4 KiB, 100 ms of stereo is 3.2 KB).
        assert!(pcm(&audio).len() - kept.len() < crate::sealed::CHUNK + 3_200, "{} kept", kept.len());
        assert_eq!(repair_sealed(&path, &keys()).unwrap(), Repair::AlreadyValid);
    }
}
