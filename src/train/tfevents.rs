//! TensorBoard event files, written and read without TensorFlow: a file is a sequence of records,
//! each `u64 length (LE) · masked CRC-32C of the length · an Event protobuf · masked CRC-32C of it`
//! (TensorFlow's `record_writer.cc`). The Events hold a `file_version` (the first) or scalars: a
//! `Summary` of `Value { tag, simple_value }`. W&B (`wandb.tensorboard`) and MLflow ingest these files.
//!
//! A record is written with one `write` call on a file opened for appending, so a killed process never
//! leaves half a record in the page cache; a torn last record (power loss) is ignored by [`read`] and cut
//! off by [`EventWriter::open`].
use crate::checkpoint::write_atomic;
use crate::error::{IoContext, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow's record format uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !bytes.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One event: a file version or scalars at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    pub scalars: Vec<(String, f32)>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn length_delimited(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl Event {
    /// The Event protobuf (`tensorflow/core/util/event.proto`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, 1 << 3 | 1);
        out.extend_from_slice(&self.wall_time.to_le_bytes());
        varint(&mut out, 2 << 3);
        varint(&mut out, self.step as u64);
        if let Some(v) = &self.file_version {
            length_delimited(&mut out, 3, v.as_bytes());
        }
        if !self.scalars.is_empty() {
            let mut summary = Vec::new();
            for (tag, value) in &self.scalars {
                let mut v = Vec::new();
                length_delimited(&mut v, 1, tag.as_bytes());
                varint(&mut v, 2 << 3 | 5);
                v.extend_from_slice(&value.to_le_bytes());
                length_delimited(&mut summary, 1, &v);
            }
            length_delimited(&mut out, 5, &summary);
        }
        out
    }

    /// Reads the fields [`Event::encode`] writes; other fields are skipped. `None`: not a protobuf.
    pub fn decode(bytes: &[u8]) -> Option<Event> {
        let mut e = Event { wall_time: 0.0, step: 0, file_version: None, scalars: Vec::new() };
        for (field, value) in fields(bytes)? {
            match (field, value) {
                (1, Field::Fixed64(v)) => e.wall_time = f64::from_le_bytes(v),
                (2, Field::Varint(v)) => e.step = v as i64,
                (3, Field::Bytes(b)) => e.file_version = Some(String::from_utf8_lossy(b).into()),
                (5, Field::Bytes(summary)) => {
                    for (f, v) in fields(summary)? {
                        if let (1, Field::Bytes(value)) = (f, v) {
                            let (mut tag, mut x) = (String::new(), None);
                            for (f, v) in fields(value)? {
                                match (f, v) {
                                    (1, Field::Bytes(t)) => tag = String::from_utf8_lossy(t).into(),
                                    (2, Field::Fixed32(b)) => x = Some(f32::from_le_bytes(b)),
                                    _ => {}
                                }
                            }
                            e.scalars.extend(x.map(|x| (tag, x)));
                        }
                    }
                }
                _ => {}
            }
        }
        Some(e)
    }
}

enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= ((byte & 0x7F) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The (field number, value) pairs of one protobuf message.
fn fields(b: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let value = match key & 7 {
            0 => Field::Varint(read_varint(b, &mut i)?),
            1 => {
                let v = b.get(i..i + 8)?.try_into().ok()?;
                i += 8;
                Field::Fixed64(v)
            }
            2 => {
                let n = read_varint(b, &mut i)? as usize;
                let v = b.get(i..i.checked_add(n)?)?;
                i += n;
                Field::Bytes(v)
            }
            5 => {
                let v = b.get(i..i + 4)?.try_into().ok()?;
                i += 4;
                Field::Fixed32(v)
            }
            _ => return None,
        };
        out.push((key >> 3, value));
    }
    Some(out)
}

/// One record in TensorFlow's framing.
fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The whole records of an event file (byte offset past each, and the event); reading stops at a torn
/// or damaged record.
fn records(bytes: &[u8]) -> Vec<(usize, Event)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(header) = bytes.get(i..i + 12) {
        let len_bytes = &header[..8];
        let n = u64::from_le_bytes(len_bytes.try_into().unwrap_or_default()) as usize;
        if u32::from_le_bytes(header[8..12].try_into().unwrap_or_default()) != masked_crc(len_bytes) {
            break;
        }
        let Some(data) = i.checked_add(12 + n).and_then(|end| bytes.get(i + 12..end)) else { break };
        let Some(crc) = bytes.get(i + 12 + n..i + 16 + n) else { break };
        if u32::from_le_bytes(crc.try_into().unwrap_or_default()) != masked_crc(data) {
            break;
        }
        let Some(event) = Event::decode(data) else { break };
        i += 16 + n;
        out.push((i, event));
    }
    out
}

/// The events of a file, a torn last record ignored.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    Ok(records(&std::fs::read(path).at(path)?).into_iter().map(|(_, e)| e).collect())
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Appends scalars to a run's event file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
}

impl EventWriter {
    /// Opens `path`, keeping the events `keep` accepts (and the file version) and dropping a torn tail;
    /// a new file starts with the file version record.
    pub fn open(path: &Path, keep: impl Fn(&Event) -> bool) -> Result<EventWriter> {
        let bytes = if path.exists() { std::fs::read(path).at(path)? } else { Vec::new() };
        let mut kept = Vec::new();
        let mut start = 0;
        for (end, e) in records(&bytes) {
            if e.file_version.is_some() || keep(&e) {
                kept.extend_from_slice(&bytes[start..end]);
            }
            start = end;
        }
        if kept.is_empty() {
            let version =
                Event { wall_time: now(), step: 0, file_version: Some("brain.Event:2".into()), scalars: vec![] };
            kept = frame(&version.encode());
        }
        if kept != bytes {
            write_atomic(path, &kept)?;
        }
        Ok(EventWriter { path: path.to_path_buf() })
    }

    /// Appends one event of `scalars` at `step`.
    pub fn scalars(&self, step: i64, scalars: &[(&str, f64)]) -> Result<()> {
        let scalars = scalars.iter().map(|(t, v)| (t.to_string(), *v as f32)).collect();
        let record = frame(&Event { wall_time: now(), step, file_version: None, scalars }.encode());
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).at(&self.path)?;
        f.write_all(&record).at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.out.tfevents.x");
        let w = EventWriter::open(&p, |_| true).unwrap();
        w.scalars(5, &[("train/loss", 1.5), ("train/lr", 0.1)]).unwrap();
        w.scalars(10, &[("train/loss", 0.75)]).unwrap();
        let events = read(&p).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!(events[1].step, 5);
        assert_eq!(events[1].scalars, vec![("train/loss".to_string(), 1.5), ("train/lr".to_string(), 0.1)]);
        // The framing: length, its masked CRC, the data, its masked CRC.
        let bytes = std::fs::read(&p).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), masked_crc(&bytes[..8]));
        assert_eq!(u32::from_le_bytes(bytes[12 + n..16 + n].try_into().unwrap()), masked_crc(&bytes[12..12 + n]));
        // A record cut short is ignored on read and removed on open; `keep` drops later steps.
        let mut torn = bytes.clone();
        torn.extend_from_slice(
            &frame(&Event { wall_time: 0.0, step: 11, file_version: None, scalars: vec![] }.encode())[..9],
        );
        std::fs::write(&p, &torn).unwrap();
        assert_eq!(read(&p).unwrap().len(), 3);
        EventWriter::open(&p, |e| e.step <= 5).unwrap();
        let events = read(&p).unwrap();
        assert_eq!(events.iter().map(|e| e.step).collect::<Vec<_>>(), vec![0, 5]);
        assert_eq!(std::fs::read(&p).unwrap().len(), bytes.len() - (bytes.len() - records(&bytes)[1].0));
    }
}
