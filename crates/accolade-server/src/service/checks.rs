//! The outcome of an `accolade doctor` check, shared by the parts that contribute checks (the
//! CLI's own, the Open Credit API's) without them depending on the CLI.

/// How a `doctor` check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}
