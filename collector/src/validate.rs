//! Bounds on what agents send, checked before anything is stored. Pure: a
//! report batch is either entirely within `Limits` or refused whole with a
//! message naming the offending field and the limit.

use std::collections::HashSet;

use census_proto::v1 as pb;
use prost::Message;

use crate::config::Limits;
use crate::metrics;

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
            Some(pb::report::Body::Health(batch)) => check.health(batch)?,
            Some(pb::report::Body::InventoryDelta(d)) => {
                if let Some(changed) = &d.changed {
                    check.inventory(changed)?;
                }
                check.path = "inventory_delta.".into();
                check.count("cleared_sections", d.cleared_sections.len())?;
                check.software(&pb::SoftwareSection { packages: d.packages_added.clone() })?;
                check.software(&pb::SoftwareSection { packages: d.packages_removed.clone() })?;
            }
        }
    }
    Ok(())
}

/// Checks an enrollment request.
pub fn enroll_request(req: &pb::EnrollRequest, limits: &Limits) -> Result<(), Violation> {
    csr(&req.csr_pem, limits)?;
    let mut check = Checker { limits, path: String::new() };
    check.string("agent_version", &req.agent_version)?;
    check.string("enrollment_secret", &req.enrollment_secret)?;
    let identity = req.identity.as_ref().ok_or_else(|| Violation::Invalid("identity is required".into()))?;
    check.identity(identity)?;
    Ok(())
}

/// Checks a renewal request (the CSR's contents are the PKI's to judge).
pub fn renew_request(req: &pb::RenewCertificateRequest, limits: &Limits) -> Result<(), Violation> {
    csr(&req.csr_pem, limits)
}

fn csr(csr_pem: &str, limits: &Limits) -> Result<(), Violation> {
    if csr_pem.len() > limits.max_csr_bytes {
        return Err(Violation::TooLarge(format!(
            "csr_pem is {} bytes; the limit is {} (limits.max_csr_bytes)",
            csr_pem.len(),
            limits.max_csr_bytes
        )));
    }
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
        // NUL separates key parts in the store's indexes (and never occurs
        // in names an OS produces), so it is refused rather than escaped.
        if value.contains('\0') {
            return Err(Violation::Invalid(format!("{}{field} contains a NUL byte", self.path)));
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
        self.opt("identity.domain", &id.domain)?;
        self.unreadable("identity", &id.unreadable)
    }

    /// A list of strings: its length and every item.
    fn strings(&mut self, field: &str, list: &[String]) -> Result<(), Violation> {
        self.count(field, list.len())?;
        list.iter().try_for_each(|v| self.string(field, v))
    }

    fn software(&mut self, sw: &pb::SoftwareSection) -> Result<(), Violation> {
        self.count("software.packages", sw.packages.len())?;
        for p in &sw.packages {
            self.string("software.packages.name", &p.name)?;
            self.string("software.packages.version", &p.version)?;
            self.string("software.packages.source", &p.source)?;
            self.opt("software.packages.arch", &p.arch)?;
            self.opt("software.packages.vendor", &p.vendor)?;
        }
        Ok(())
    }

    fn hardware(&mut self, hw: &pb::HardwareSection) -> Result<(), Violation> {
        if let Some(s) = &hw.system {
            for (f, v) in [
                ("hardware.system.vendor", &s.vendor),
                ("hardware.system.model", &s.model),
                ("hardware.system.serial", &s.serial),
                ("hardware.system.chassis_type", &s.chassis_type),
                ("hardware.system.bios_vendor", &s.bios_vendor),
                ("hardware.system.bios_version", &s.bios_version),
                ("hardware.system.bios_date", &s.bios_date),
            ] {
                self.opt(f, v)?;
            }
        }
        self.count("hardware.memory_modules", hw.memory_modules.len())?;
        for m in &hw.memory_modules {
            self.string("hardware.memory_modules.slot", &m.slot)?;
            for (f, v) in [
                ("hardware.memory_modules.bank", &m.bank),
                ("hardware.memory_modules.memory_type", &m.memory_type),
                ("hardware.memory_modules.manufacturer", &m.manufacturer),
                ("hardware.memory_modules.part_number", &m.part_number),
                ("hardware.memory_modules.serial", &m.serial),
            ] {
                self.opt(f, v)?;
            }
        }
        self.count("hardware.disks", hw.disks.len())?;
        for d in &hw.disks {
            self.string("hardware.disks.name", &d.name)?;
            self.string("hardware.disks.kind", &d.kind)?;
            self.opt("hardware.disks.model", &d.model)?;
            self.opt("hardware.disks.serial", &d.serial)?;
        }
        self.count("hardware.gpus", hw.gpus.len())?;
        for g in &hw.gpus {
            self.string("hardware.gpus.pci_address", &g.pci_address)?;
            self.opt("hardware.gpus.vendor", &g.vendor)?;
            self.opt("hardware.gpus.driver", &g.driver)?;
            self.opt("hardware.gpus.model", &g.model)?;
        }
        self.count("hardware.batteries", hw.batteries.len())?;
        for b in &hw.batteries {
            self.string("hardware.batteries.name", &b.name)?;
            self.opt("hardware.batteries.manufacturer", &b.manufacturer)?;
            self.opt("hardware.batteries.model", &b.model)?;
            self.opt("hardware.batteries.status", &b.status)?;
        }
        if let Some(v) = &hw.virtualization {
            self.string("hardware.virtualization.kind", &v.kind)?;
            self.opt("hardware.virtualization.technology", &v.technology)?;
        }
        self.unreadable("hardware", &hw.unreadable)
    }

    fn netconfig(&mut self, net: &pb::NetConfigSection) -> Result<(), Violation> {
        self.count("netconfig.default_gateways", net.default_gateways.len())?;
        for g in &net.default_gateways {
            self.string("netconfig.default_gateways.gateway", &g.gateway)?;
            self.string("netconfig.default_gateways.interface", &g.interface)?;
        }
        if let Some(dns) = &net.dns {
            self.strings("netconfig.dns.nameservers", &dns.nameservers)?;
            self.strings("netconfig.dns.search", &dns.search)?;
            self.strings("netconfig.dns.upstream_nameservers", &dns.upstream_nameservers)?;
        }
        self.count("netconfig.listening", net.listening.len())?;
        for l in &net.listening {
            self.string("netconfig.listening.protocol", &l.protocol)?;
            self.string("netconfig.listening.address", &l.address)?;
            self.count("netconfig.listening.processes", l.processes.len())?;
            for p in &l.processes {
                self.opt("netconfig.listening.processes.name", &p.name)?;
            }
        }
        self.unreadable("netconfig", &net.unreadable)
    }

    fn users(&mut self, users: &pb::UsersSection) -> Result<(), Violation> {
        self.count("users.accounts", users.accounts.len())?;
        for a in &users.accounts {
            self.string("users.accounts.name", &a.name)?;
            self.string("users.accounts.home", &a.home)?;
            self.opt("users.accounts.gecos", &a.gecos)?;
            self.opt("users.accounts.shell", &a.shell)?;
        }
        self.count("users.groups", users.groups.len())?;
        for g in &users.groups {
            self.string("users.groups.name", &g.name)?;
            self.strings("users.groups.members", &g.members)?;
        }
        self.strings("users.admins", &users.admins)?;
        self.count("users.sessions", users.sessions.len())?;
        for s in &users.sessions {
            self.string("users.sessions.user", &s.user)?;
            self.string("users.sessions.tty", &s.tty)?;
            self.opt("users.sessions.host", &s.host)?;
        }
        self.count("users.last_logins", users.last_logins.len())?;
        for l in &users.last_logins {
            self.string("users.last_logins.user", &l.user)?;
            self.string("users.last_logins.source", &l.source)?;
            self.opt("users.last_logins.tty", &l.tty)?;
            self.opt("users.last_logins.host", &l.host)?;
        }
        self.unreadable("users", &users.unreadable)
    }

    fn services(&mut self, services: &pb::ServicesSection) -> Result<(), Violation> {
        self.string("services.manager", &services.manager)?;
        self.count("services.units", services.units.len())?;
        for u in &services.units {
            self.string("services.units.name", &u.name)?;
            for (f, v) in [
                ("services.units.description", &u.description),
                ("services.units.load_state", &u.load_state),
                ("services.units.active_state", &u.active_state),
                ("services.units.sub_state", &u.sub_state),
                ("services.units.enabled", &u.enabled),
            ] {
                self.opt(f, v)?;
            }
        }
        self.strings("services.failed", &services.failed)?;
        self.unreadable("services", &services.unreadable)
    }

    fn os_state(&mut self, os: &pb::OsStateSection) -> Result<(), Violation> {
        self.opt("os_state.timezone", &os.timezone)?;
        self.opt("os_state.secure_boot", &os.secure_boot)?;
        if let Some(r) = &os.pending_reboot {
            self.strings("os_state.pending_reboot.packages", &r.packages)?;
            self.string("os_state.pending_reboot.source", &r.source)?;
        }
        self.count("os_state.filesystems_encryption", os.filesystems_encryption.len())?;
        for f in &os.filesystems_encryption {
            self.string("os_state.filesystems_encryption.mount_point", &f.mount_point)?;
            self.string("os_state.filesystems_encryption.device", &f.device)?;
            self.string("os_state.filesystems_encryption.fs_type", &f.fs_type)?;
            self.opt("os_state.filesystems_encryption.crypt_device", &f.crypt_device)?;
        }
        self.unreadable("os_state", &os.unreadable)
    }

    /// Names here become parts of metric names and store keys: bounded,
    /// NUL-free.
    fn health(&mut self, batch: &pb::HealthBatch) -> Result<(), Violation> {
        self.path = "health.".into();
        self.count("samples", batch.samples.len())?;
        for s in &batch.samples {
            self.count("samples.filesystems", s.filesystems.len())?;
            s.filesystems.iter().try_for_each(|f| self.string("samples.filesystems.mount_point", &f.mount_point))?;
            self.count("samples.disks", s.disks.len())?;
            s.disks.iter().try_for_each(|d| self.string("samples.disks.device", &d.device))?;
            self.count("samples.network", s.network.len())?;
            s.network.iter().try_for_each(|n| self.string("samples.network.interface", &n.interface))?;
            self.count("samples.top_by_cpu", s.top_by_cpu.len())?;
            s.top_by_cpu.iter().try_for_each(|p| self.string("samples.top_by_cpu.name", &p.name))?;
            self.count("samples.top_by_memory", s.top_by_memory.len())?;
            s.top_by_memory.iter().try_for_each(|p| self.string("samples.top_by_memory.name", &p.name))?;
            self.count("samples.temperatures", s.temperatures.len())?;
            s.temperatures.iter().try_for_each(|t| self.string("samples.temperatures.sensor", &t.sensor))?;
            self.strings("samples.failed_units", &s.failed_units)?;
            self.count("samples.custom", s.custom.len())?;
            let mut names = HashSet::new();
            s.custom.iter().try_for_each(|c| self.custom_metric(c, &mut names))?;
        }
        Ok(())
    }

    /// A custom series: its name becomes a metric name as sent (bounded,
    /// `metrics::custom_name_problem`), once per sample, with a finite value.
    fn custom_metric<'s>(&mut self, m: &'s pb::CustomMetric, names: &mut HashSet<&'s str>) -> Result<(), Violation> {
        let field = "samples.custom.name";
        if m.name.len() > metrics::MAX_CUSTOM_NAME_BYTES {
            return Err(Violation::TooLarge(format!(
                "{}{field} is {} bytes; the limit for custom metric names is {}",
                self.path,
                m.name.len(),
                metrics::MAX_CUSTOM_NAME_BYTES
            )));
        }
        self.string(field, &m.name)?;
        if let Some(problem) = metrics::custom_name_problem(&m.name) {
            return Err(Violation::Invalid(format!("{}{field} {:?} {problem}", self.path, m.name)));
        }
        if !m.value.is_finite() {
            return Err(Violation::Invalid(format!(
                "{}samples.custom {} has the value {}; values must be finite",
                self.path, m.name, m.value
            )));
        }
        if !names.insert(&m.name) {
            return Err(Violation::Invalid(format!("{}samples.custom {} appears twice in one sample", self.path, m.name)));
        }
        Ok(())
    }

    fn updates(&mut self, updates: &pb::UpdatesSection) -> Result<(), Violation> {
        self.count("updates.updates", updates.updates.len())?;
        for u in &updates.updates {
            self.string("updates.updates.name", &u.name)?;
            self.opt("updates.updates.installed_version", &u.installed_version)?;
            self.string("updates.updates.available_version", &u.available_version)?;
            self.string("updates.updates.source", &u.source)?;
            self.opt("updates.updates.origin", &u.origin)?;
        }
        self.unreadable("updates", &updates.unreadable)
    }

    fn certificates(&mut self, certs: &pb::CertificatesSection) -> Result<(), Violation> {
        self.count("certificates.certificates", certs.certificates.len())?;
        for c in &certs.certificates {
            for (f, v) in [
                ("certificates.certificates.path", &c.path),
                ("certificates.certificates.location", &c.location),
                ("certificates.certificates.subject", &c.subject),
                ("certificates.certificates.issuer", &c.issuer),
                ("certificates.certificates.serial", &c.serial),
                ("certificates.certificates.sha256_fingerprint", &c.sha256_fingerprint),
            ] {
                self.string(f, v)?;
            }
            self.strings("certificates.certificates.sans", &c.sans)?;
        }
        self.unreadable("certificates", &certs.unreadable)
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
        if let Some(sw) = &inv.software {
            self.software(sw)?;
        }
        if let Some(hw) = &inv.hardware {
            self.hardware(hw)?;
        }
        if let Some(net) = &inv.netconfig {
            self.netconfig(net)?;
        }
        if let Some(users) = &inv.users {
            self.users(users)?;
        }
        if let Some(services) = &inv.services {
            self.services(services)?;
        }
        if let Some(os) = &inv.os_state {
            self.os_state(os)?;
        }
        if let Some(updates) = &inv.updates {
            self.updates(updates)?;
        }
        if let Some(certs) = &inv.certificates {
            self.certificates(certs)?;
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
    fn refuses_nul_bytes() {
        let err = report_request(&request(vec![hb(1, "0.1\0evil")]), &Limits::default()).unwrap_err();
        assert!(matches!(&err, Violation::Invalid(m) if m.contains("NUL")), "{err}");
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

    fn inventory_report(inv: pb::Inventory) -> pb::ReportRequest {
        request(vec![pb::Report { seq: 1, created_at_unix_ms: 0, body: Some(pb::report::Body::Inventory(inv)) }])
    }

    #[test]
    fn bounds_the_package_list() {
        let package = pb::Package { name: "bash".into(), version: "5.2".into(), source: "dpkg".into(), ..Default::default() };
        let inv =
            |n: usize| pb::Inventory { software: Some(pb::SoftwareSection { packages: vec![package.clone(); n] }), ..Default::default() };
        let limits = Limits { max_items_per_list: 3, ..Limits::default() };
        assert_eq!(report_request(&inventory_report(inv(3)), &limits), Ok(()));
        let err = report_request(&inventory_report(inv(4)), &limits).unwrap_err();
        assert!(matches!(err, Violation::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("inventory.software.packages has 4 items"), "{err}");
    }

    #[test]
    fn bounds_strings_in_the_new_sections() {
        let limits = Limits { max_string_bytes: 16, ..Limits::default() };
        let long = "x".repeat(17);
        let vendor = pb::Inventory {
            software: Some(pb::SoftwareSection {
                packages: vec![pb::Package { name: "bash".into(), vendor: Some(long.clone()), ..Default::default() }],
            }),
            ..Default::default()
        };
        let err = report_request(&inventory_report(vendor), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.software.packages.vendor is 17 bytes"), "{err}");

        let member = pb::Inventory {
            users: Some(pb::UsersSection {
                groups: vec![pb::Group { name: "sudo".into(), gid: 27, members: vec![long.clone()] }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = report_request(&inventory_report(member), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.users.groups.members is 17 bytes"), "{err}");

        let reason = pb::Inventory {
            os_state: Some(pb::OsStateSection {
                unreadable: vec![pb::Unreadable { field: "secure_boot".into(), reason: long }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = report_request(&inventory_report(reason), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.os_state.unreadable.reason"), "{err}");
    }

    fn health_report(custom: Vec<pb::CustomMetric>) -> pb::ReportRequest {
        let sample = pb::HealthSample { taken_at_unix_ms: 1, custom, ..Default::default() };
        let batch = pb::HealthBatch { samples: vec![sample], ..Default::default() };
        request(vec![pb::Report { seq: 1, created_at_unix_ms: 0, body: Some(pb::report::Body::Health(batch)) }])
    }

    fn custom(name: &str, value: f64) -> pb::CustomMetric {
        pb::CustomMetric { name: name.into(), value }
    }

    #[test]
    fn accepts_custom_metrics_within_bounds() {
        let limits = Limits { max_items_per_list: 3, ..Limits::default() };
        let ok = vec![custom("custom.test_fill", 95.0), custom("custom.queue_depth.mail", -1.5e3), custom("custom.u.getty@tty1", 0.0)];
        assert_eq!(report_request(&health_report(ok), &limits), Ok(()));
        let longest = format!("custom.{}", "n".repeat(metrics::MAX_CUSTOM_NAME_BYTES - "custom.".len()));
        assert_eq!(report_request(&health_report(vec![custom(&longest, 1.0)]), &limits), Ok(()));
    }

    #[test]
    fn refuses_custom_metrics_out_of_bounds() {
        let limits = Limits { max_items_per_list: 3, ..Limits::default() };
        let refused = |list: Vec<pb::CustomMetric>| report_request(&health_report(list), &limits).unwrap_err();

        let err = refused(vec![custom("custom.a", 1.0); 4]);
        assert!(matches!(&err, Violation::TooLarge(m) if m.contains("health.samples.custom has 4 items")), "{err}");
        let too_long = format!("custom.{}", "n".repeat(metrics::MAX_CUSTOM_NAME_BYTES));
        let err = refused(vec![custom(&too_long, 1.0)]);
        assert!(matches!(&err, Violation::TooLarge(m) if m.contains("health.samples.custom.name is 207 bytes")), "{err}");

        for (name, why) in [
            ("custom.a\0b", "NUL"),
            ("cpu", "does not start with"),
            ("custom.", "must continue after"),
            ("custom.a b", "contains ' '"),
            ("custom.fs.*", "contains '*'"),
        ] {
            let err = refused(vec![custom(name, 1.0)]);
            assert!(
                matches!(&err, Violation::Invalid(m) if m.contains("health.samples.custom.name") && m.contains(why)),
                "{name:?}: {err}"
            );
        }
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = refused(vec![custom("custom.a", value)]);
            assert!(matches!(&err, Violation::Invalid(m) if m.contains("values must be finite")), "{value}: {err}");
        }
        let err = refused(vec![custom("custom.a", 1.0), custom("custom.a", 2.0)]);
        assert!(matches!(&err, Violation::Invalid(m) if m.contains("custom.a appears twice")), "{err}");
    }

    #[test]
    fn bounds_updates_and_certificates() {
        let limits = Limits { max_string_bytes: 16, max_items_per_list: 2, ..Limits::default() };
        let long = "x".repeat(17);
        let update =
            pb::PendingUpdate { name: "openssl".into(), available_version: "3".into(), source: "apt".into(), ..Default::default() };
        let updates = |list: Vec<pb::PendingUpdate>| pb::Inventory {
            updates: Some(pb::UpdatesSection { updates: list, unreadable: Vec::new() }),
            ..Default::default()
        };
        assert_eq!(report_request(&inventory_report(updates(vec![update.clone(); 2])), &limits), Ok(()));
        let err = report_request(&inventory_report(updates(vec![update.clone(); 3])), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.updates.updates has 3 items"), "{err}");
        let origin = pb::PendingUpdate { origin: Some(long.clone()), ..update };
        let err = report_request(&inventory_report(updates(vec![origin])), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.updates.updates.origin is 17 bytes"), "{err}");

        let cert = pb::Certificate { path: "/etc/ssl/a.pem".into(), ..Default::default() };
        let certs = |c: pb::Certificate| pb::Inventory {
            certificates: Some(pb::CertificatesSection { certificates: vec![c], unreadable: Vec::new() }),
            ..Default::default()
        };
        assert_eq!(report_request(&inventory_report(certs(cert.clone())), &limits), Ok(()));
        let err = report_request(&inventory_report(certs(pb::Certificate { subject: long.clone(), ..cert.clone() })), &limits).unwrap_err();
        assert!(err.to_string().contains("inventory.certificates.certificates.subject is 17 bytes"), "{err}");
        let err = report_request(&inventory_report(certs(pb::Certificate { sans: vec!["DNS:a".into(); 3], ..cert.clone() })), &limits)
            .unwrap_err();
        assert!(err.to_string().contains("inventory.certificates.certificates.sans has 3 items"), "{err}");
        let err =
            report_request(&inventory_report(certs(pb::Certificate { sans: vec![format!("DNS:a\0b")], ..cert })), &limits).unwrap_err();
        assert!(matches!(err, Violation::Invalid(_)), "{err}");
    }
}
