//! What one playbook may keep: bytes of output and of recorded values. Over a limit the
//! playbook ends with a clear error (and cleanup), never an allocation abort.

/// Bytes of output (`print`, `log`, `debug`) one playbook may write.
pub const OUTPUT: usize = 16 << 20;
/// Bytes one `record` value may take (as JSON).
pub const RECORD_VALUE: usize = 1 << 20;
/// Bytes all of a playbook's records may take together.
pub const RECORDS: usize = 8 << 20;

/// What a playbook is told when its output went over [`OUTPUT`].
pub fn output_limit_message() -> String {
    format!(
        "the playbook wrote more than {} MiB of output (print, log, debug): stopped",
        OUTPUT >> 20
    )
}
