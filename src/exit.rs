//! Exit codes and the few error kinds callers branch on.
//!
//! Every failure travels as an `anyhow::Error`; an error that must map to a specific exit code
//! carries a [`Coded`] somewhere in its chain (add context on top freely: [`code_of`] walks the
//! whole chain).
//!
//! [`Code`] is the one list of exit codes: `--help`, the man page (`provision(8)`, EXIT STATUS)
//! and the README's table are made from it (a test holds the README to it).

use std::fmt;

/// Declares [`Code`] and, from the same lines, [`Code::ALL`], [`Code::label`] and
/// [`Code::meaning`]: a code's doc comment *is* its documented meaning, so nothing can list
/// a code the enum lacks or describe one differently.
macro_rules! exit_codes {
    ($( $(#[doc = $doc:literal])+ $name:ident = $num:literal, $label:literal; )+) => {
        /// Process exit codes. Each variant's doc comment is its meaning as `provision(8)` and
        /// the README print it (Markdown inline: `code`); the label is `--help`'s short form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Code {
            $( $(#[doc = $doc])+ $name = $num, )+
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name),+];

            /// A few words for `--help` (`refused by a safety check`).
            pub fn label(self) -> &'static str {
                match self { $(Code::$name => $label,)+ }
            }

            /// The documented meaning: the variant's doc comment on one line.
            pub fn meaning(self) -> String {
                let doc = match self { $(Code::$name => concat!($($doc, "\n"),+),)+ };
                doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
            }
        }
    };
}

exit_codes! {
    /// done (or nothing needed doing)
    Ok = 0, "ok";
    /// unexpected failure; `validate` found problems (3 or 8 when they are in the `secrets` or `sops` section: the code a real run would give)
    Failure = 1, "failure (or validate found problems)";
    // clap's own code for a usage error.
    /// bad command-line usage
    Usage = 2, "usage";
    /// bad config, layout or kernel cmdline value (e.g. `homelab.provision_disks=maybe`)
    BadInput = 3, "bad config/layout/cmdline";
    /// refused by a safety check, or `--plan-hash` did not match — nothing was touched
    Refused = 4, "refused by a safety check";
    /// an external command (lvm, sgdisk, mkfs, mount …) failed
    Command = 5, "external command failed";
    /// network: the key bundle could not be fetched before the deadline (or 403/404)
    Network = 6, "network";
    /// the key bundle failed verification (sha256, TLS, content checks) — nothing written
    Verify = 7, "key bundle failed verification";
    /// a required secret could not be decrypted — the generation was not switched
    Decrypt = 8, "decryption failed";
    /// mount-only: something the layout needs is missing (VG, LV, partition, a partition whose
    /// GPT name does not match, or a partition, LV or disk without the filesystem or swap the
    /// layout names)
    Missing = 9, "something the layout needs is missing";
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// `--help`'s closing line: every code with its label.
    pub fn help_summary() -> String {
        let list: Vec<String> = Code::ALL
            .iter()
            .map(|c| format!("{} {}", c.as_i32(), c.label()))
            .collect();
        format!("Exit codes: {}. See provision(8).", list.join(", "))
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

    #[test]
    fn every_code_once_in_order_with_words() {
        for (i, c) in Code::ALL.iter().enumerate() {
            assert_eq!(c.as_i32(), i as i32, "{c:?}: codes are 0, 1, 2, … in order");
            assert!(!c.label().is_empty() && !c.meaning().is_empty(), "{c:?}");
            assert!(!c.meaning().contains('\n'), "{c:?}");
        }
        assert_eq!(
            Code::Missing.meaning(),
            "mount-only: something the layout needs is missing (VG, LV, partition, a partition \
             whose GPT name does not match, or a partition, LV or disk without the filesystem or \
             swap the layout names)"
        );
        let help = Code::help_summary();
        for c in Code::ALL {
            assert!(
                help.contains(&format!("{} {}", c.as_i32(), c.label())),
                "{help}"
            );
        }
    }
}
