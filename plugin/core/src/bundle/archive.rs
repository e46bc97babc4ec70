//! Reading a bundle archive: gzip, then tar, both bounded and strict.
//!
//! Only what a policy bundle needs is accepted: regular files and directories. Links, devices
//! and names that climb out of the archive (`..`) refuse the whole bundle, because an archive
//! whose meaning depends on the reader's interpretation is not one to activate.

use std::collections::BTreeSet;

use super::BundleError;

const BLOCK: usize = 512;
const MAX_FILES: usize = 1024;
const MAX_NAME_BYTES: usize = 1024;

/// One regular file of the archive, its name normalized (no leading `/` or `./`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn archive(message: impl Into<String>) -> BundleError {
    BundleError::Archive(message.into())
}

/// Decompresses a single-member gzip stream of at most `limit` unpacked bytes.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, BundleError> {
    let header = bytes
        .get(..10)
        .ok_or_else(|| archive("not a gzip stream (too short)"))?;
    if header.get(..3) != Some(&[0x1f, 0x8b, 0x08]) {
        return Err(archive("not a gzip stream"));
    }
    let flags = header.get(3).copied().unwrap_or_default();
    if flags & 0xe0 != 0 {
        return Err(archive("gzip header has reserved flags set"));
    }
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(&[low, high]) = bytes.get(at..at + 2) else {
            return Err(archive("gzip extra field is truncated"));
        };
        at += 2 + usize::from(u16::from_le_bytes([low, high]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let rest = bytes
                .get(at..)
                .ok_or_else(|| archive("gzip header is truncated"))?;
            let end = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| archive("gzip header name or comment is unterminated"))?;
            at += end + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    let body = bytes
        .get(at..)
        .filter(|b| b.len() >= 8)
        .ok_or_else(|| archive("gzip stream is truncated"))?;
    let (unpacked, consumed) = inflate(body, limit)?;
    let Some(&[c0, c1, c2, c3, s0, s1, s2, s3]) = body.get(consumed..consumed + 8) else {
        return Err(archive("gzip trailer is missing"));
    };
    if body.len() != consumed + 8 {
        return Err(archive(
            "data after the gzip stream (multi-member archives are not accepted)",
        ));
    }
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let size = u32::from_le_bytes([s0, s1, s2, s3]);
    // ISIZE is the length modulo 2^32 by definition.
    if size != unpacked.len() as u32 || crc != crc32(&unpacked) {
        return Err(archive(
            "gzip checksum or length does not match its content",
        ));
    }
    Ok(unpacked)
}

/// Raw DEFLATE with an output bound; returns the output and the input bytes consumed.
fn inflate(input: &[u8], limit: usize) -> Result<(Vec<u8>, usize), BundleError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;

    let mut state = DecompressorOxide::new();
    let mut out = vec![0u8; limit.clamp(1, 64 * 1024)];
    let mut written = 0;
    let mut read = 0;
    loop {
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        let (status, in_used, out_used) = decompress(
            &mut state,
            input.get(read..).unwrap_or_default(),
            &mut out,
            written,
            flags,
        );
        read += in_used;
        written += out_used;
        match status {
            TINFLStatus::Done => {
                out.truncate(written);
                return Ok((out, read));
            }
            TINFLStatus::HasMoreOutput => {
                if out.len() >= limit {
                    return Err(BundleError::TooLarge(limit));
                }
                let grown = out.len().saturating_mul(2).min(limit);
                out.resize(grown, 0);
            }
            TINFLStatus::NeedsMoreInput => return Err(archive("gzip stream is truncated")),
            _ => return Err(archive("gzip stream is corrupt")),
        }
    }
}

/// CRC-32 (IEEE), as the gzip trailer carries it. Bitwise: bundles are small and rare.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn field(header: &[u8], start: usize, len: usize) -> &[u8] {
    let raw = header.get(start..start + len).unwrap_or_default();
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    raw.get(..end).unwrap_or_default()
}

fn octal(header: &[u8], start: usize, len: usize, what: &str) -> Result<usize, BundleError> {
    let raw = header.get(start..start + len).unwrap_or_default();
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(archive(format!("tar {what} uses base-256 encoding")));
    }
    let text = std::str::from_utf8(field(header, start, len))
        .map_err(|_| archive(format!("tar {what} is not octal")))?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    usize::from_str_radix(text, 8).map_err(|_| archive(format!("tar {what} is not octal")))
}

fn checksum_ok(header: &[u8]) -> Result<bool, BundleError> {
    let stored = octal(header, 148, 8, "checksum")?;
    let sum: usize = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                usize::from(b' ')
            } else {
                usize::from(*b)
            }
        })
        .sum();
    Ok(sum == stored)
}

/// `a/./b` and `./a` become `a/b` and `a`; `..`, empty names and NUL refuse the archive.
pub fn normalize(name: &str) -> Result<String, BundleError> {
    if name.len() > MAX_NAME_BYTES || name.contains('\0') || name.contains('\\') {
        return Err(archive(format!(
            "entry name `{}` is not acceptable",
            name.escape_debug()
        )));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(archive(format!(
                    "entry name `{}` climbs out of the bundle",
                    name.escape_debug()
                )))
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(archive("an entry has an empty name"));
    }
    Ok(parts.join("/"))
}

/// The `path` record of a PAX extended header, if any. Records are `"<len> key=value\n"`.
fn pax_path(mut records: &[u8]) -> Result<Option<String>, BundleError> {
    let bad = || archive("tar PAX header is malformed");
    let mut path = None;
    while !records.is_empty() {
        let space = records.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(records.get(..space).ok_or_else(bad)?)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)?;
        let record = records.get(space + 1..len).ok_or_else(bad)?;
        let record = record.strip_suffix(b"\n").ok_or_else(bad)?;
        let eq = record.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        let (key, value) = (
            record.get(..eq).ok_or_else(bad)?,
            record.get(eq + 1..).ok_or_else(bad)?,
        );
        match key {
            b"path" => {
                path = Some(
                    std::str::from_utf8(value)
                        .map_err(|_| archive("tar PAX path is not UTF-8"))?
                        .to_owned(),
                )
            }
            // A size override only exists for files beyond what a bundle may hold.
            b"size" => return Err(archive("tar PAX size override is not accepted")),
            _ => {}
        }
        records = records.get(len..).ok_or_else(bad)?;
    }
    Ok(path)
}

/// Lists the regular files of a tar archive; at most `limit` bytes of file content in all.
pub fn untar(bytes: &[u8], limit: usize) -> Result<Vec<File>, BundleError> {
    let mut files = Vec::new();
    let mut names = BTreeSet::new();
    let mut total = 0usize;
    let mut at = 0;
    let mut long_name: Option<String> = None;
    loop {
        let Some(header) = bytes.get(at..at + BLOCK) else {
            return Err(archive("tar archive is truncated (no end marker)"));
        };
        if header.iter().all(|b| *b == 0) {
            return Ok(files);
        }
        if !checksum_ok(header)? {
            return Err(archive("tar header checksum does not match"));
        }
        let size = octal(header, 124, 12, "size")?;
        let kind = header.get(156).copied().unwrap_or_default();
        let content_start = at + BLOCK;
        let content = bytes
            .get(content_start..content_start.saturating_add(size))
            .ok_or_else(|| archive("tar entry is truncated"))?;
        at = content_start + size.div_ceil(BLOCK) * BLOCK;
        match kind {
            b'x' => {
                long_name = pax_path(content)?;
                continue;
            }
            b'L' => {
                let name = content.split(|b| *b == 0).next().unwrap_or_default();
                long_name = Some(
                    std::str::from_utf8(name)
                        .map_err(|_| archive("tar long name is not UTF-8"))?
                        .to_owned(),
                );
                continue;
            }
            b'g' => continue,
            _ => {}
        }
        let name = match long_name.take() {
            Some(name) => name,
            None => {
                let base = field(header, 0, 100);
                let prefix = field(header, 345, 155);
                let join = if prefix.is_empty() {
                    base.to_vec()
                } else {
                    [prefix, b"/", base].concat()
                };
                String::from_utf8(join).map_err(|_| archive("tar entry name is not UTF-8"))?
            }
        };
        match kind {
            b'0' | 0 => {}
            b'5' => continue,
            other => {
                return Err(archive(format!(
                    "entry `{}` is not a regular file (tar type `{}`)",
                    name.escape_debug(),
                    char::from(other).escape_debug()
                )))
            }
        }
        let name = normalize(&name)?;
        total = total.saturating_add(size);
        if total > limit {
            return Err(BundleError::TooLarge(limit));
        }
        if files.len() >= MAX_FILES {
            return Err(archive(format!("more than {MAX_FILES} files")));
        }
        if !names.insert(name.clone()) {
            return Err(archive(format!("entry `{name}` appears twice")));
        }
        files.push(File {
            name,
            bytes: content.to_vec(),
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header for tests; `kind` is the type flag.
    pub fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: usize = h.iter().map(|b| usize::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    pub fn tar(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, content, kind) in entries {
            out.extend(header(name, content.len(), *kind));
            out.extend_from_slice(content);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend([0u8; 2 * BLOCK]);
        out
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        out.extend(miniz_oxide::deflate::compress_to_vec(bytes, 6));
        out.extend(crc32(bytes).to_le_bytes());
        out.extend((bytes.len() as u32).to_le_bytes());
        out
    }

    #[test]
    fn reads_regular_files_and_skips_directories() {
        let archive = gzip(&tar(&[
            ("./", b"", b'5'),
            ("./data.json", b"{}", b'0'),
            ("/a/b.rego", b"package a", b'0'),
        ]));
        let bytes = gunzip(&archive, 1 << 20).unwrap();
        let files = untar(&bytes, 1 << 20).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["data.json", "a/b.rego"]);
        assert_eq!(files[1].bytes, b"package a");
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn refuses_hostile_archives() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("link", tar(&[("x", b"", b'2')])),
            ("climb", tar(&[("../x.rego", b"p", b'0')])),
            (
                "twice",
                tar(&[("a.rego", b"p", b'0'), ("./a.rego", b"q", b'0')]),
            ),
            ("no end", {
                let mut t = tar(&[("a.rego", b"p", b'0')]);
                t.truncate(1024);
                t
            }),
            ("checksum", {
                let mut t = tar(&[("a.rego", b"p", b'0')]);
                t[0] = b'b';
                t
            }),
        ];
        for (what, bytes) in cases {
            assert!(untar(&bytes, 1 << 20).is_err(), "{what}");
        }
        let big = tar(&[("a.json", &[b' '; 4096], b'0')]);
        assert_eq!(untar(&big, 1000), Err(BundleError::TooLarge(1000)));
    }

    #[test]
    fn refuses_bad_gzip() {
        let good = gzip(&tar(&[("a.rego", b"p", b'0')]));
        assert!(gunzip(&good, 1 << 20).is_ok());
        let mut corrupt = good.clone();
        let last = corrupt.len() - 6;
        corrupt[last] ^= 1;
        assert!(gunzip(&corrupt, 1 << 20).is_err());
        assert!(gunzip(&good[..good.len() - 3], 1 << 20).is_err());
        assert!(gunzip(b"PK\x03\x04 not gzip", 1 << 20).is_err());
        let mut trailing = good.clone();
        trailing.extend_from_slice(&good);
        assert!(gunzip(&trailing, 1 << 20).is_err());
        // A bomb: a megabyte of zeros unpacks past a small limit and is stopped there.
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert_eq!(
            gunzip(&bomb, 64 * 1024),
            Err(BundleError::TooLarge(64 * 1024))
        );
    }
}
