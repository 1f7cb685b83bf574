//! The long-lived responses each principal holds open (deployment events, followed logs),
//! counted so that one principal cannot hold the server's connections and file handles:
//! past its share, a new stream is refused with a 429 until one of its others closes.

use crate::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open streams by principal.
#[derive(Debug, Default)]
pub struct Streams {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it (when the response ends or the client leaves) gives the
/// principal's share back.
#[derive(Debug)]
pub(crate) struct Slot {
    streams: Arc<Streams>,
    principal: String,
}

impl Streams {
    /// Opens a stream for `principal`, or refuses when it holds `max` already.
    pub(crate) fn open(self: &Arc<Self>, principal: &str, max: usize) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().expect("never poisoned");
        let count = open.entry(principal.to_string()).or_default();
        if *count >= max {
            return Err(ApiError::TooMany(format!(
                "{principal} already follows {count} streams (events or logs), the most one \
                 principal may hold open; close one and try again"
            )));
        }
        *count += 1;
        Ok(Slot {
            streams: self.clone(),
            principal: principal.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("never poisoned");
        if let Some(count) = open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_gets_its_share_and_it_comes_back_when_a_stream_ends() {
        let streams = Arc::new(Streams::default());
        let a: Vec<Slot> = (0..2).map(|_| streams.open("alice", 2).unwrap()).collect();
        assert!(matches!(
            streams.open("alice", 2),
            Err(ApiError::TooMany(_))
        ));
        let _bob = streams.open("bob", 2).unwrap();
        drop(a);
        assert!(streams.open("alice", 2).is_ok());
        assert!(streams.open.lock().unwrap().get("alice").is_none());
    }
}
