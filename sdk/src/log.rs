//! Logging into the host's logs, tagged with the plugin's name.
//!
//! Outside the sandbox (native unit tests) lines go to standard error. Never log secrets.

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::wit::wharf::plugin::log as wit;
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, message)
}
