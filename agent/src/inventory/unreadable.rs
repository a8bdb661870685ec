//! `Unreadable`: a field the agent could not read, and why.
//!
//! Invariant: a field is either present with a real value or absent and
//! listed here with a reason an operator can act on ("permission denied (run
//! the agent as root)", "not present on this system"). It is never reported
//! as an empty string, and one unreadable field never fails its section.
//! Pure domain code: the helpers turn an already-obtained error into a
//! reason; nothing here touches the system.

/// One field of an inventory section that has no value, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unreadable {
    /// Dotted field name inside the section, e.g. `system.serial` or
    /// `disks[nvme0n1].serial`.
    pub field: String,
    /// Why the field has no value.
    pub reason: String,
}

impl Unreadable {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Unreadable { field: field.into(), reason: reason.into() }
    }

    /// The field could not be read because of `err` while reading `source`
    /// (a path or a command line). The reason names the source so an
    /// operator can check it by hand.
    pub fn from_io(field: impl Into<String>, source: &str, err: &std::io::Error) -> Self {
        Unreadable::new(field, io_reason(source, err))
    }
}

/// Operator-facing wording for an I/O error on `source`.
pub fn io_reason(source: &str, err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => format!("{source} not present on this system"),
        ErrorKind::PermissionDenied => {
            format!("permission denied reading {source} (needs root)")
        }
        _ => format!("reading {source}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_reasons_name_the_source() {
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let u = Unreadable::from_io("system.serial", "/sys/class/dmi/id/product_serial", &e);
        assert_eq!(u.field, "system.serial");
        assert!(u.reason.contains("permission denied"));
        assert!(u.reason.contains("product_serial"));
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(io_reason("/x", &e).contains("not present"));
    }
}
