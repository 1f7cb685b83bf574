//! Logs: each container's lines, read from the end for a tail and followed as they are
//! written, a block at a time.

use crate::target::{EnvRef, LogQuery, LogStream, TargetError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The first lines of each log under `dir` and, when following, the stream of what comes
/// next.
pub(super) fn read_logs(
    dir: &Path,
    env: &EnvRef,
    query: &LogQuery,
) -> Result<LogStream, TargetError> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let stem = name.strip_suffix(".log")?.to_string();
                    Some((stem, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(w) = &query.workload {
        files.retain(|(stem, _)| stem.split_once('.').is_some_and(|(wl, _)| wl == w));
        if files.is_empty() {
            return Err(TargetError::Missing(format!(
                "workload {w} has no logs in {}/{} (is it deployed?)",
                env.app, env.env
            )));
        }
    }
    files.sort();
    let prefix = files.len() > 1;
    let mut first = Vec::new();
    let mut cursors = Vec::new();
    for (stem, path) in files {
        let label = stem.replacen('.', "/", 1);
        let (lines, consumed) = last_lines(&path, query.tail);
        first.extend(lines.iter().map(|line| tag(prefix, &label, line)));
        cursors.push(Cursor {
            label,
            path,
            offset: consumed,
        });
    }
    let head = futures_util::stream::iter(first);
    if !query.follow {
        return Ok(Box::pin(head));
    }
    let tail = futures_util::stream::unfold(
        (cursors, std::collections::VecDeque::<String>::new()),
        move |(mut cursors, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    return Some((line, (cursors, pending)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut alive = false;
                for c in &mut cursors {
                    alive |= c.path.exists();
                    for line in c.read_new().await {
                        pending.push_back(tag(prefix, &c.label, line.as_bytes()));
                    }
                }
                if !alive {
                    return None;
                }
            }
        },
    );
    Ok(Box::pin(futures_util::StreamExt::chain(head, tail)))
}

/// The last `n` complete lines of a log file, and the offset just after the last one.
/// Reads backwards from the end in blocks, so that a tail of a few lines costs a few
/// blocks, not the whole file.
pub(super) fn last_lines(path: &Path, n: usize) -> (Vec<Vec<u8>>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 64 << 10;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // What was read so far, from `start` to the end of the file.
    let mut buf: Vec<u8> = Vec::new();
    let mut start = len;
    let end_of_complete = loop {
        // The complete lines end at the last newline; what follows is being written.
        if let Some(last) = buf.iter().rposition(|b| *b == b'\n') {
            let complete = &buf[..last];
            let newlines = complete.iter().filter(|b| **b == b'\n').count();
            if newlines >= n || start == 0 {
                break Some(last);
            }
        } else if start == 0 {
            break None;
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut block).is_err() {
            return (Vec::new(), len);
        }
        block.extend_from_slice(&buf);
        buf = block;
        start = from;
    };
    let Some(last) = end_of_complete else {
        return (Vec::new(), 0);
    };
    let mut segments: Vec<&[u8]> = buf[..last].split(|b| *b == b'\n').collect();
    if start > 0 {
        segments.remove(0); // may be cut by the block boundary
    }
    let mut lines: Vec<Vec<u8>> = segments
        .into_iter()
        .rev()
        .filter(|l| !l.is_empty())
        .take(n)
        .map(<[u8]>::to_vec)
        .collect();
    lines.reverse();
    (lines, start + last as u64 + 1)
}

/// A log file being followed.
pub(super) struct Cursor {
    label: String,
    path: PathBuf,
    offset: u64,
}

impl Cursor {
    /// The complete lines written since the last read (from the start after a rotation).
    async fn read_new(&mut self) -> Vec<String> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Vec::new();
        };
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
        }
        if len == self.offset {
            return Vec::new();
        }
        use tokio::io::AsyncSeekExt;
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return Vec::new();
        }
        // At most a block per poll: a follower catches up over several polls instead of
        // loading what a noisy workload wrote all at once.
        const BLOCK: u64 = 1 << 20;
        let mut buf = Vec::new();
        if (&mut file).take(BLOCK).read_to_end(&mut buf).await.is_err() {
            return Vec::new();
        }
        let end = match buf.iter().rposition(|b| *b == b'\n') {
            Some(end) => end,
            // A line longer than a block is sent in pieces.
            None if buf.len() as u64 == BLOCK => {
                self.offset += BLOCK;
                return vec![String::from_utf8_lossy(&buf).into_owned()];
            }
            None => return Vec::new(),
        };
        self.offset += end as u64 + 1;
        buf[..end]
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

pub(super) fn tag(prefix: bool, label: &str, line: &[u8]) -> String {
    let line = String::from_utf8_lossy(line);
    if prefix {
        format!("[{label}] {line}")
    } else {
        line.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_reads_the_last_whole_lines_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("w.c.log");
        let mut text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        text.push_str("half a li");
        std::fs::write(&log, &text).unwrap();
        let (lines, offset) = last_lines(&log, 3);
        let lines: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(lines, ["line 199997", "line 199998", "line 199999"]);
        assert_eq!(offset, (text.len() - "half a li".len()) as u64);
        // More lines than one block holds, and the whole file when it has fewer.
        let (many, _) = last_lines(&log, 20_000);
        assert_eq!(many.len(), 20_000);
        assert_eq!(many[0], b"line 180000");
        let (all, _) = last_lines(&log, 1_000_000);
        assert_eq!(all.len(), 200_000);
        assert_eq!(all[0], b"line 0");
        assert_eq!(last_lines(&dir.path().join("none.log"), 5), (Vec::new(), 0));
    }
}
