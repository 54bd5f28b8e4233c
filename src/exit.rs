//! Exit codes and the few error kinds callers branch on.
//!
//! Every failure travels as an `anyhow::Error`; an error that must map to a specific exit code
//! carries a [`Coded`] somewhere in its chain (add context on top freely: [`code_of`] walks the
//! whole chain).

use std::fmt;

/// Process exit codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Everything done (or nothing needed doing).
    Ok = 0,
    /// Unexpected failure, or `validate` found problems.
    Failure = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// Bad config, layout or kernel cmdline value.
    BadInput = 3,
    /// A safety check refused to act (or `--plan-hash` did not match); nothing was changed.
    Refused = 4,
    /// An external command (lvm, sgdisk, mkfs, mount …) failed.
    Command = 5,
    /// Network: the key bundle could not be fetched before the deadline.
    Network = 6,
    /// The key bundle failed verification (hash, TLS, content checks); nothing was written.
    Verify = 7,
    /// One or more required secrets could not be decrypted; generation not switched.
    Decrypt = 8,
    /// Mount-only: something the layout needs is not on the disks (VG, LV, partition).
    Missing = 9,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Of two codes, the one with the lower number (bad input before a decrypt failure).
    pub fn min_by_value(self, other: Code) -> Code {
        if other.as_i32() < self.as_i32() {
            other
        } else {
            self
        }
    }
}

/// An error tagged with the exit code it maps to.
#[derive(Debug)]
pub struct Coded {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Build an `anyhow::Error` carrying `code`.
pub fn coded(code: Code, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

/// The exit code for an error: the first [`Coded`] found in its chain, else [`Code::Failure`].
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.code))
        .unwrap_or(Code::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_survives_context() {
        let e: anyhow::Result<()> = Err(coded(Code::Refused, "disk busy"));
        let e = e.context("planning disks").unwrap_err();
        assert_eq!(code_of(&e), Code::Refused);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), Code::Failure);
    }
}
