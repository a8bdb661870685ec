//! Bounds on what agents send, checked before anything is stored. Pure: a
//! report batch is either entirely within `Limits` or refused whole with a
//! message naming the offending field and the limit.

use census_proto::v1 as pb;
use prost::Message;

use crate::config::Limits;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Too big or too many: the agent should send less.
    TooLarge(String),
    /// Malformed: the agent sent something it never should.
    Invalid(String),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::TooLarge(m) | Violation::Invalid(m) => f.write_str(m),
        }
    }
}

/// Checks a report batch against the limits.
pub fn report_request(req: &pb::ReportRequest, limits: &Limits) -> Result<(), Violation> {
    if req.reports.len() > limits.max_reports_per_request {
        return Err(Violation::TooLarge(format!(
            "{} reports in one request; the limit is {} (limits.max_reports_per_request)",
            req.reports.len(),
            limits.max_reports_per_request
        )));
    }
    let mut previous = 0u64;
    for report in &req.reports {
        if report.seq == 0 {
            return Err(Violation::Invalid("report seq 0: sequence numbers start at 1".into()));
        }
        if report.seq <= previous {
            return Err(Violation::Invalid(format!(
                "report seq {} follows seq {previous} in the same request: reports must be in ascending seq order",
                report.seq
            )));
        }
        previous = report.seq;
        let size = report.encoded_len();
        if size > limits.max_report_bytes {
            return Err(Violation::TooLarge(format!(
                "report seq {} is {size} bytes; the limit is {} bytes (limits.max_report_bytes)",
                report.seq, limits.max_report_bytes
            )));
        }
        let mut check = Checker { limits, path: String::new() };
        match &report.body {
            None => return Err(Violation::Invalid(format!("report seq {} has no body", report.seq))),
            Some(pb::report::Body::Heartbeat(hb)) => check.string("heartbeat.agent_version", &hb.agent_version)?,
            Some(pb::report::Body::Inventory(inv)) => check.inventory(inv)?,
        }
    }
    Ok(())
}

/// Checks an enrollment request.
pub fn enroll_request(req: &pb::EnrollRequest, limits: &Limits) -> Result<(), Violation> {
    if req.csr_pem.len() > limits.max_csr_bytes {
        return Err(Violation::TooLarge(format!(
            "csr_pem is {} bytes; the limit is {} (limits.max_csr_bytes)",
            req.csr_pem.len(),
            limits.max_csr_bytes
        )));
    }
    let mut check = Checker { limits, path: String::new() };
    check.string("agent_version", &req.agent_version)?;
    check.string("enrollment_secret", &req.enrollment_secret)?;
    let identity = req.identity.as_ref().ok_or_else(|| Violation::Invalid("identity is required".into()))?;
    check.identity(identity)?;
    Ok(())
}

struct Checker<'a> {
    limits: &'a Limits,
    path: String,
}

impl Checker<'_> {
    fn string(&mut self, field: &str, value: &str) -> Result<(), Violation> {
        if value.len() > self.limits.max_string_bytes {
            return Err(Violation::TooLarge(format!(
                "{}{field} is {} bytes; the limit is {} (limits.max_string_bytes)",
                self.path,
                value.len(),
                self.limits.max_string_bytes
            )));
        }
        Ok(())
    }

    fn opt(&mut self, field: &str, value: &Option<String>) -> Result<(), Violation> {
        value.as_deref().map_or(Ok(()), |v| self.string(field, v))
    }

    fn count(&mut self, field: &str, n: usize) -> Result<(), Violation> {
        if n > self.limits.max_items_per_list {
            return Err(Violation::TooLarge(format!(
                "{}{field} has {n} items; the limit is {} (limits.max_items_per_list)",
                self.path, self.limits.max_items_per_list
            )));
        }
        Ok(())
    }

    fn unreadable(&mut self, section: &str, list: &[pb::Unreadable]) -> Result<(), Violation> {
        self.count(&format!("{section}.unreadable"), list.len())?;
        for u in list {
            self.string(&format!("{section}.unreadable.field"), &u.field)?;
            self.string(&format!("{section}.unreadable.reason"), &u.reason)?;
        }
        Ok(())
    }

    fn identity(&mut self, id: &pb::HostIdentity) -> Result<(), Violation> {
        if id.host_uuid.is_empty() {
            return Err(Violation::Invalid("identity.host_uuid is empty".into()));
        }
        if id.hostname.is_empty() {
            return Err(Violation::Invalid("identity.hostname is empty".into()));
        }
        self.string("identity.host_uuid", &id.host_uuid)?;
        self.string("identity.hostname", &id.hostname)?;
        self.string("identity.host_uuid_source", &id.host_uuid_source)?;
        self.opt("identity.fqdn", &id.fqdn)?;
        self.opt("identity.domain", &id.domain)
    }

    fn inventory(&mut self, inv: &pb::Inventory) -> Result<(), Violation> {
        self.path = "inventory.".into();
        if let Some(id) = &inv.identity {
            self.identity(id)?;
        }
        if let Some(os) = &inv.os {
            for (f, v) in [("os.name", &os.name), ("os.kernel", &os.kernel), ("os.arch", &os.arch), ("os.family", &os.family)] {
                self.string(f, v)?;
            }
            for (f, v) in [
                ("os.version", &os.version),
                ("os.version_id", &os.version_id),
                ("os.id", &os.id),
                ("os.pretty_name", &os.pretty_name),
                ("os.timezone", &os.timezone),
                ("os.build", &os.build),
            ] {
                self.opt(f, v)?;
            }
            self.count("os.id_like", os.id_like.len())?;
            for v in &os.id_like {
                self.string("os.id_like", v)?;
            }
            self.unreadable("os", &os.unreadable)?;
        }
        if let Some(cpu) = &inv.cpu {
            self.string("cpu.model", &cpu.model)?;
            self.string("cpu.vendor", &cpu.vendor)?;
            self.unreadable("cpu", &cpu.unreadable)?;
        }
        if let Some(mem) = &inv.memory {
            self.unreadable("memory", &mem.unreadable)?;
        }
        if let Some(fs) = &inv.filesystems {
            self.count("filesystems", fs.filesystems.len())?;
            for f in &fs.filesystems {
                self.string("filesystems.mount_point", &f.mount_point)?;
                self.string("filesystems.device", &f.device)?;
                self.string("filesystems.fs_type", &f.fs_type)?;
            }
        }
        if let Some(net) = &inv.network {
            self.count("network.interfaces", net.interfaces.len())?;
            for i in &net.interfaces {
                self.string("network.interfaces.name", &i.name)?;
                self.opt("network.interfaces.mac", &i.mac)?;
                self.string("network.interfaces.oper_state", &i.oper_state)?;
                self.count("network.interfaces.addresses", i.addresses.len())?;
                for a in &i.addresses {
                    self.string("network.interfaces.addresses.address", &a.address)?;
                }
            }
        }
        self.count("errors", inv.errors.len())?;
        for e in &inv.errors {
            self.string("errors.section", &e.section)?;
            self.string("errors.message", &e.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(seq: u64, version: &str) -> pb::Report {
        pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: 1, agent_version: version.into() })),
        }
    }

    fn request(reports: Vec<pb::Report>) -> pb::ReportRequest {
        pb::ReportRequest { agent_id: "a".into(), reports }
    }

    #[test]
    fn accepts_ordinary_batch() {
        assert_eq!(report_request(&request(vec![hb(1, "0.1.0"), hb(2, "0.1.0")]), &Limits::default()), Ok(()));
    }

    #[test]
    fn refuses_out_of_order_zero_and_empty() {
        let l = Limits::default();
        assert!(matches!(report_request(&request(vec![hb(2, ""), hb(2, "")]), &l), Err(Violation::Invalid(_))));
        assert!(matches!(report_request(&request(vec![hb(0, "")]), &l), Err(Violation::Invalid(_))));
        let empty = pb::Report { seq: 1, created_at_unix_ms: 0, body: None };
        assert!(matches!(report_request(&request(vec![empty]), &l), Err(Violation::Invalid(_))));
    }

    #[test]
    fn names_the_limit_that_was_crossed() {
        let limits = Limits { max_string_bytes: 8, ..Limits::default() };
        let err = report_request(&request(vec![hb(1, "0.1.0-very-long")]), &limits).unwrap_err();
        assert!(err.to_string().contains("heartbeat.agent_version") && err.to_string().contains("max_string_bytes"), "{err}");

        let limits = Limits { max_reports_per_request: 1, ..Limits::default() };
        let err = report_request(&request(vec![hb(1, ""), hb(2, "")]), &limits).unwrap_err();
        assert!(err.to_string().contains("max_reports_per_request"), "{err}");

        let limits = Limits { max_items_per_list: 1, ..Limits::default() };
        let inv = pb::Inventory {
            filesystems: Some(pb::FilesystemSection { filesystems: vec![pb::Filesystem::default(), pb::Filesystem::default()] }),
            ..Default::default()
        };
        let report = pb::Report { seq: 1, created_at_unix_ms: 0, body: Some(pb::report::Body::Inventory(inv)) };
        let err = report_request(&request(vec![report]), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.filesystems has 2 items"), "{err}");
    }
}
