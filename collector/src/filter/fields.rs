//! The field catalogue: every name a filter, a sort key or a column can
//! use, its type, its meaning, and how to read it from a [`HostView`].
//! `docs/filters.md` lists this very table ([`catalogue_markdown`]; a test
//! checks the document against it).
//!
//! Members of a collection (filesystems, packages, services, ...) are
//! fields named `<collection>.<member field>`: unkeyed, `fs.used_percent`
//! yields the value of every filesystem; called with a key,
//! `fs("/").used_percent` yields only those of the members whose key
//! (`fs.mount`) matches the key's glob.
//!
//! Invariants: reading a field never allocates and never panics; a field
//! of a section the host has not reported has no value ("unknown"); a
//! multi-valued field hands its values one by one to a visitor that can
//! stop early.

use std::cmp::Ordering;
use std::fmt;

use census_proto::v1 as pb;
use census_version::Ecosystem;

use super::ast::quoted;
use super::error::ParseError;
use super::value::{Type, Value, sort_cmp};
use crate::alert::pattern::Glob;
use crate::store::HostView;

/// What evaluation needs besides the host: the time (the domain never
/// reads the clock) and how long a host may stay silent and be online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub now_unix_ms: i64,
    /// A host is online while it was seen at most this long ago.
    pub offline_after_ms: i64,
}

impl Context {
    /// The one definition of "online": a report arrived (ever), at most
    /// `offline_after_ms` ago. The host list, /metrics and filters use it.
    pub fn online(&self, last_seen_unix_ms: i64) -> bool {
        last_seen_unix_ms > 0 && self.now_unix_ms.saturating_sub(last_seen_unix_ms) <= self.offline_after_ms
    }
}

type OneFn = for<'h> fn(&'h HostView, &Context) -> Option<Value<'h>>;
type EachFn = for<'h> fn(&'h HostView, Option<&Key>, &mut dyn FnMut(Value<'h>) -> bool) -> bool;

/// How a field is read.
#[derive(Clone, Copy)]
pub(crate) enum Getter {
    /// At most one value per host.
    One(OneFn),
    /// Any number of values, restricted to the members a key selects;
    /// returns true as soon as the visitor does.
    Each(EachFn),
}

/// One entry of the catalogue.
pub struct FieldDef {
    /// Lower-case dotted name, e.g. "memory.total", "fs.used_percent".
    pub name: &'static str,
    pub ty: Type,
    /// One line for the catalogue in docs/filters.md.
    pub doc: &'static str,
    pub(crate) get: Getter,
}

impl FieldDef {
    /// Whether a host may have several values (one per interface, ...).
    pub fn is_multi(&self) -> bool {
        matches!(self.get, Getter::Each(_))
    }

    /// How the field is written with a key, when it has one:
    /// `fs("/").used_percent`; else its name.
    pub fn keyed_example(&self) -> String {
        match self.collection() {
            Some(c) => format!("{}(\"{}\"){}", c.name, c.example_key, &self.name[c.name.len()..]),
            None => self.name.to_string(),
        }
    }

    /// The collection this field is a member field of, when it can be
    /// called with a key (`fs` for `fs.used_percent`).
    pub fn collection(&self) -> Option<&'static Collection> {
        let (prefix, _) = self.name.split_once('.')?;
        COLLECTIONS.iter().find(|c| c.name == prefix)
    }
}

impl PartialEq for FieldDef {
    fn eq(&self, other: &FieldDef) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for FieldDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A collection whose members can be selected by a key: `fs("/")`,
/// `software("openssl")`, `service("sshd")`.
#[derive(Debug)]
pub struct Collection {
    pub name: &'static str,
    /// The member field a key is matched against, e.g. "fs.mount".
    pub key_field: &'static str,
    /// The member field compared when the call itself is compared:
    /// `software("openssl") < "3.0.13"` compares `software.version`.
    pub default_field: Option<&'static str>,
    /// A suffix the key may leave out: `service("sshd")` also finds
    /// "sshd.service".
    pub key_suffix: Option<&'static str>,
    /// A key for examples in messages and docs.
    pub example_key: &'static str,
}

/// The collections, in catalogue order.
pub static COLLECTIONS: &[Collection] = &[
    Collection { name: "disk", key_field: "disk.name", default_field: None, key_suffix: None, example_key: "sda" },
    Collection { name: "fs", key_field: "fs.mount", default_field: None, key_suffix: None, example_key: "/" },
    Collection { name: "interface", key_field: "interface.name", default_field: None, key_suffix: None, example_key: "eth0" },
    Collection {
        name: "software",
        key_field: "software.name",
        default_field: Some("software.version"),
        key_suffix: None,
        example_key: "openssl",
    },
    Collection { name: "update", key_field: "update.name", default_field: None, key_suffix: None, example_key: "openssl" },
    Collection { name: "service", key_field: "service.name", default_field: None, key_suffix: Some(".service"), example_key: "sshd" },
    Collection { name: "user", key_field: "user.name", default_field: None, key_suffix: None, example_key: "root" },
    Collection {
        name: "certificate",
        key_field: "certificate.path",
        default_field: None,
        key_suffix: None,
        example_key: "/etc/ssl/certs/site.pem",
    },
];

/// The key of a collection call: a glob (the alert rules' language) over
/// the member's key field.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    glob: Glob,
    /// The pattern when it has no wildcard: most keys (`software("openssl")`)
    /// are names, compared as strings, which is what a scan over every
    /// package of every host can afford.
    exact: Option<String>,
    suffix: Option<&'static str>,
}

impl Key {
    pub(crate) fn new(pattern: &str, collection: &Collection) -> Key {
        let exact = (!pattern.contains(['*', '?'])).then(|| pattern.to_string());
        Key { glob: Glob::new(pattern), exact, suffix: collection.key_suffix }
    }

    pub fn pattern(&self) -> String {
        self.glob.as_string()
    }

    /// The key when it names one member exactly (no wildcard, and no
    /// suffix it may leave out): what an index can look up.
    pub fn exact(&self) -> Option<&str> {
        if self.suffix.is_some() { None } else { self.exact.as_deref() }
    }

    pub fn matches(&self, name: &str) -> bool {
        let matches = |n: &str| match &self.exact {
            Some(exact) => n == exact,
            None => self.glob.matches(n),
        };
        matches(name) || self.suffix.and_then(|s| name.strip_suffix(s)).is_some_and(matches)
    }
}

/// A field as a filter, a sort key (`--sort memory.total`) or a column
/// (`--columns hostname,fs("/").used_percent`) names it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub(crate) def: &'static FieldDef,
    pub(crate) key: Option<Key>,
}

impl FieldRef {
    /// Parses a field alone: `memory.total`, `software("openssl")`,
    /// `fs("/").used_percent`.
    pub fn parse(text: &str) -> Result<FieldRef, ParseError> {
        super::parser::parse_field(text)
    }

    pub fn def(&self) -> &'static FieldDef {
        self.def
    }

    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    pub fn ty(&self) -> Type {
        self.def.ty
    }

    /// Whether any value of the field on this host satisfies `test`;
    /// stops at the first that does.
    pub(crate) fn any<'h>(&self, host: &'h HostView, ctx: &Context, mut test: impl FnMut(Value<'h>) -> bool) -> bool {
        match self.def.get {
            Getter::One(get) => get(host, ctx).is_some_and(test),
            Getter::Each(get) => get(host, self.key.as_ref(), &mut test),
        }
    }

    /// The value to sort a host by: the field's value, or for a
    /// multi-valued field its first value in the inventory's order.
    /// `None`: unknown on this host.
    pub fn value<'h>(&self, host: &'h HostView, ctx: &Context) -> Option<Value<'h>> {
        let mut first = None;
        self.any(host, ctx, |v| {
            first = Some(v);
            true
        });
        first
    }

    /// Every value, in the inventory's order (a column of a table).
    pub fn values<'h>(&self, host: &'h HostView, ctx: &Context) -> Vec<Value<'h>> {
        let mut all = Vec::new();
        self.any(host, ctx, |v| {
            all.push(v);
            false
        });
        all
    }

    /// Orders two hosts by this field's [`FieldRef::value`], hosts
    /// without one last; see [`Value::sort_cmp`].
    pub fn compare_hosts(&self, a: &HostView, b: &HostView, ctx: &Context) -> Ordering {
        sort_cmp(self.value(a, ctx).as_ref(), self.value(b, ctx).as_ref())
    }
}

/// The canonical spelling, which parses back to the same field:
/// `memory.total`, `fs("/").used_percent`, `software("openssl").version`.
impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, self.def.collection()) {
            (Some(key), Some(c)) => write!(f, "{}({}){}", c.name, quoted(&key.pattern()), &self.def.name[c.name.len()..]),
            _ => f.write_str(self.def.name),
        }
    }
}

impl FieldRef {
    /// `software("openssl")` for `software("openssl").version` (the
    /// collection's default field, compared when the call is), `None`
    /// otherwise.
    pub(crate) fn short_call(&self) -> Option<String> {
        let c = self.def.collection()?;
        let key = self.key.as_ref()?;
        (c.default_field == Some(self.def.name)).then(|| format!("{}({})", c.name, quoted(&key.pattern())))
    }

    /// `fs("/")` for a keyed collection's key field (the form that tests
    /// presence), `None` otherwise.
    pub(crate) fn presence_call(&self) -> Option<String> {
        let c = self.def.collection()?;
        let key = self.key.as_ref()?;
        (c.key_field == self.def.name).then(|| format!("{}({})", c.name, quoted(&key.pattern())))
    }
}

/// The catalogue entry of a name, ignoring ASCII case.
pub fn lookup(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

pub fn collection(name: &str) -> Option<&'static Collection> {
    COLLECTIONS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The known name closest to a mistyped one, if close enough to be a
/// typo: at most a third of its letters (and at least two) differ.
pub(crate) fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let name = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    candidates.into_iter().map(|c| (edit_distance(&name, c), c)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, c)| c)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The catalogue as the Markdown table docs/filters.md holds.
pub fn catalogue_markdown() -> String {
    let mut out = String::from("| field | type | meaning |\n|---|---|---|\n");
    for f in FIELDS {
        let name = match f.collection() {
            Some(_) => format!("`{}` · `{}`", f.name, f.keyed_example()),
            None => format!("`{}`", f.name),
        };
        let many = if f.is_multi() { " (any-match)" } else { "" };
        out.push_str(&format!("| {name} | {}{many} | {} |\n", f.ty.name(), f.doc));
    }
    out
}

/// The collections as the Markdown table docs/filters.md holds.
pub fn collections_markdown() -> String {
    let mut out = String::from("| collection | key matched against | called as | compared directly |\n|---|---|---|---|\n");
    for c in COLLECTIONS {
        let suffix = c.key_suffix.map(|s| format!(" (`{s}` may be left out)")).unwrap_or_default();
        let default = c.default_field.map(|d| format!("`{d}`")).unwrap_or_else(|| "—".into());
        out.push_str(&format!("| `{}` | `{}`{suffix} | `{}(\"{}\")` | {default} |\n", c.name, c.key_field, c.name, c.example_key));
    }
    out
}

// ---------------------------------------------------------------- reading a HostView

fn inventory(h: &HostView) -> Option<&pb::Inventory> {
    h.inventory.as_ref()?.inventory.as_ref()
}

macro_rules! sections {
    ($($fn_name:ident: $field:ident as $ty:ty),* $(,)?) => {
        $(fn $fn_name(h: &HostView) -> Option<&$ty> {
            inventory(h)?.$field.as_ref()
        })*
    };
}

sections!(
    identity: identity as pb::HostIdentity,
    os: os as pb::OsSection,
    cpu: cpu as pb::CpuSection,
    memory: memory as pb::MemorySection,
    filesystems: filesystems as pb::FilesystemSection,
    network: network as pb::NetworkSection,
    software: software as pb::SoftwareSection,
    hardware: hardware as pb::HardwareSection,
    netconfig: netconfig as pb::NetConfigSection,
    users: users as pb::UsersSection,
    services: services as pb::ServicesSection,
    os_state: os_state as pb::OsStateSection,
    updates: updates as pb::UpdatesSection,
    certificates: certificates as pb::CertificatesSection,
);

fn system(h: &HostView) -> Option<&pb::SystemRecord> {
    hardware(h)?.system.as_ref()
}

fn virtualization(h: &HostView) -> Option<&pb::Virtualization> {
    hardware(h)?.virtualization.as_ref()
}

fn dns(h: &HostView) -> Option<&pb::DnsConfig> {
    netconfig(h)?.dns.as_ref()
}

/// Whether the agent named `field` among the section's unreadable fields
/// (then an empty list means "unknown", not "none").
fn unreadable(list: &[pb::Unreadable], field: &str) -> bool {
    list.iter().any(|u| u.field == field)
}

/// Whether a section, or one of its sources (`updates.dnf`), failed.
fn section_failed(h: &HostView, section: &str) -> bool {
    inventory(h).is_some_and(|i| {
        i.errors.iter().any(|e| e.section.strip_prefix(section).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
    })
}

fn keyed<'h, T>(items: &'h [T], key: Option<&Key>, name: fn(&T) -> &str) -> impl Iterator<Item = &'h T> {
    items.iter().filter(move |m| key.is_none_or(|k| k.matches(name(m))))
}

/// `fn NAME(host, key)`: the members of a keyed collection whose key field
/// matches `key` (every member when `None`).
macro_rules! members {
    ($($fn_name:ident: $section:ident.$list:ident by $key:ident as $ty:ty),* $(,)?) => {
        $(fn $fn_name<'h>(h: &'h HostView, key: Option<&Key>) -> impl Iterator<Item = &'h $ty> {
            keyed($section(h).map_or(&[][..], |s| &s.$list), key, |m| &m.$key)
        })*
    };
}

members!(
    fs_members: filesystems.filesystems by mount_point as pb::Filesystem,
    interface_members: network.interfaces by name as pb::NetworkInterface,
    package_members: software.packages by name as pb::Package,
    update_members: updates.updates by name as pb::PendingUpdate,
    service_members: services.units by name as pb::Service,
    disk_members: hardware.disks by name as pb::Disk,
    account_members: users.accounts by name as pb::Account,
    certificate_members: certificates.certificates by path as pb::Certificate,
);

// Lists that are not keyed collections: the key is always `None`.

fn gpu_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [pb::Gpu] {
    hardware(h).map_or(&[], |s| &s.gpus)
}

fn battery_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [pb::Battery] {
    hardware(h).map_or(&[], |s| &s.batteries)
}

fn listening_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [pb::ListeningSocket] {
    netconfig(h).map_or(&[], |s| &s.listening)
}

fn gateway_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [pb::DefaultGateway] {
    netconfig(h).map_or(&[], |s| &s.default_gateways)
}

fn id_like_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [String] {
    os(h).map_or(&[], |s| &s.id_like)
}

fn admin_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [String] {
    users(h).map_or(&[], |s| &s.admins)
}

fn session_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [pb::Session] {
    users(h).map_or(&[], |s| &s.sessions)
}

fn dns_search_list<'h>(h: &'h HostView, _: Option<&Key>) -> &'h [String] {
    dns(h).map_or(&[], |d| &d.search)
}

/// The resolvers a host really uses: `nameserver` entries, and the
/// servers behind the systemd-resolved stub.
fn dns_server_list<'h>(h: &'h HostView, _: Option<&Key>) -> impl Iterator<Item = &'h String> {
    dns(h).into_iter().flat_map(|d| d.nameservers.iter().chain(&d.upstream_nameservers))
}

/// Reads a multi-valued field: `members(host, key)` lists the members,
/// `values` (an expression over the member `$m`, and the host `$h` when
/// named) gives each member's values as an `Option` or an iterator.
macro_rules! each {
    ($members:ident, |$m:ident| $values:expr) => {
        each!($members, |_h, $m| $values)
    };
    ($members:ident, |$h:ident, $m:ident| $values:expr) => {
        Getter::Each(|$h, key, visit| {
            for $m in $members($h, key) {
                for v in IntoIterator::into_iter($values) {
                    if visit(v) {
                        return true;
                    }
                }
            }
            false
        })
    };
}

fn text(s: &str) -> Option<Value<'_>> {
    Some(Value::Text(s))
}

fn opt_text(s: &Option<String>) -> Option<Value<'_>> {
    s.as_deref().map(Value::Text)
}

fn int(n: impl Into<i64>) -> Option<Value<'static>> {
    Some(Value::Integer(n.into()))
}

fn int_u64(n: u64) -> Option<Value<'static>> {
    Some(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// A time where 0 means "never".
fn time_set(ms: i64) -> Option<Value<'static>> {
    (ms != 0).then_some(Value::Time(ms))
}

/// Versions of pending updates are ordered by the package manager behind
/// the update source.
fn update_ecosystem(source: &str) -> Ecosystem {
    match source {
        "apt" => Ecosystem::Dpkg,
        "dnf" | "yum" => Ecosystem::Rpm,
        other => Ecosystem::for_source(other),
    }
}

fn used_percent(f: &pb::Filesystem) -> Option<Value<'static>> {
    // As df computes Use%: used over what root and users could hold.
    let used = f.total_bytes.saturating_sub(f.free_bytes);
    let capacity = used.saturating_add(f.available_bytes);
    (capacity > 0).then(|| Value::Percent(used as f64 * 100.0 / capacity as f64))
}

fn inodes_used_percent(f: &pb::Filesystem) -> Option<Value<'static>> {
    (f.inodes_total > 0).then(|| Value::Percent(f.inodes_total.saturating_sub(f.inodes_free) as f64 * 100.0 / f.inodes_total as f64))
}

fn encrypted<'h>(h: &'h HostView, f: &pb::Filesystem) -> Option<Value<'h>> {
    let state = os_state(h)?.filesystems_encryption.iter().find(|e| e.mount_point == f.mount_point)?;
    Some(Value::Bool(state.encrypted))
}

/// The number of pending updates satisfying `counted`; unknown when the
/// section or one of its sources failed, since a partial count would say
/// "0" of a host whose dnf could not be asked.
fn update_count(h: &HostView, counted: fn(&pb::PendingUpdate) -> bool) -> Option<Value<'static>> {
    let section = updates(h)?;
    if section_failed(h, "updates") {
        return None;
    }
    int_u64(section.updates.iter().filter(|u| counted(u)).count() as u64)
}

const fn one(name: &'static str, ty: Type, doc: &'static str, get: OneFn) -> FieldDef {
    FieldDef { name, ty, doc, get: Getter::One(get) }
}

const fn many(name: &'static str, ty: Type, doc: &'static str, get: Getter) -> FieldDef {
    FieldDef { name, ty, doc, get }
}

use Type::{Bool, Duration, Integer, Percent, Size, Text, Time, Version};

/// Every field, in the order docs/filters.md lists them.
pub static FIELDS: &[FieldDef] = &[
    // --- host and agent (always known)
    one("hostname", Text, "Host name as the agent reported it at enrollment.", |h, _| text(&h.agent.hostname)),
    one("agent_id", Text, "The agent's id (32 hex characters).", |h, _| text(&h.agent.agent_id)),
    one("host_uuid", Text, "Stable hardware/OS identifier (DMI UUID, machine-id, MachineGuid).", |h, _| text(&h.agent.host_uuid)),
    one("fqdn", Text, "Fully qualified domain name, when resolvable.", |h, _| opt_text(&identity(h)?.fqdn)),
    one("domain", Text, "DNS or directory domain, when known.", |h, _| opt_text(&identity(h)?.domain)),
    one("agent.version", Version, "Version of the census-agent (generic ordering).", |h, _| {
        (!h.agent.agent_version.is_empty()).then_some(Value::Version(&h.agent.agent_version, Ecosystem::Generic))
    }),
    one("agent.certificate_expires", Time, "When the agent's client certificate expires.", |h, _| time_set(h.agent.cert_not_after_unix_ms)),
    one("online", Bool, "A report arrived within the offline window (missed heartbeats).", |h, ctx| {
        Some(Value::Bool(ctx.online(h.agent.last_seen_unix_ms)))
    }),
    one("last_seen", Time, "When the last report arrived; unknown if none ever did.", |h, _| time_set(h.agent.last_seen_unix_ms)),
    one("enrolled_at", Time, "When the agent (last) enrolled.", |h, _| Some(Value::Time(h.agent.enrolled_at_unix_ms))),
    one("revoked", Bool, "The agent was revoked.", |h, _| Some(Value::Bool(h.agent.revoked))),
    one("inventory.collected_at", Time, "When the agent collected the stored inventory.", |h, _| {
        Some(Value::Time(inventory(h)?.collected_at_unix_ms))
    }),
    // --- operating system
    one("os.name", Text, "Distribution or product name, e.g. \"Ubuntu\", \"Microsoft Windows 11 Pro\".", |h, _| text(&os(h)?.name)),
    one("os.id", Text, "Machine-readable distribution id, e.g. \"ubuntu\", \"rhel\" (os-release ID).", |h, _| opt_text(&os(h)?.id)),
    many("os.id_like", Text, "Related distribution ids, e.g. \"debian\" on Ubuntu (os-release ID_LIKE).", each!(id_like_list, |s| text(s))),
    one("os.version", Text, "Version string, e.g. \"22.04.4 LTS (Jammy Jellyfish)\".", |h, _| opt_text(&os(h)?.version)),
    one("os.version_id", Version, "Machine-readable version, e.g. \"22.04\" (generic ordering).", |h, _| {
        os(h)?.version_id.as_deref().map(|v| Value::Version(v, Ecosystem::Generic))
    }),
    one("os.pretty_name", Text, "Human-readable full name (os-release PRETTY_NAME).", |h, _| opt_text(&os(h)?.pretty_name)),
    one("os.kernel", Version, "Kernel release, e.g. \"6.1.0-18-amd64\" (generic ordering).", |h, _| {
        Some(Value::Version(&os(h)?.kernel, Ecosystem::Generic))
    }),
    one("os.arch", Text, "CPU architecture as the kernel names it: \"x86_64\", \"aarch64\".", |h, _| text(&os(h)?.arch)),
    one("os.family", Text, "\"linux\", \"windows\" or \"macos\".", |h, _| text(&os(h)?.family)),
    one("os.build", Text, "Build number (Windows, macOS).", |h, _| opt_text(&os(h)?.build)),
    one("os.boot_time", Time, "When the host booted.", |h, _| os(h)?.boot_time_unix_ms.map(Value::Time)),
    one("os.install_time", Time, "When the OS was installed, where the OS records it.", |h, _| {
        os(h)?.install_time_unix_ms.map(Value::Time)
    }),
    one("uptime", Duration, "Time since boot, at evaluation time.", |h, ctx| {
        os(h)?.boot_time_unix_ms.map(|boot| Value::Duration(ctx.now_unix_ms.saturating_sub(boot).max(0)))
    }),
    one("timezone", Text, "IANA timezone, e.g. \"Europe/Paris\".", |h, _| {
        os_state(h).and_then(|s| s.timezone.as_deref()).or_else(|| os(h)?.timezone.as_deref()).map(Value::Text)
    }),
    // --- processors and memory
    one("cpu.model", Text, "CPU model name, e.g. \"AMD EPYC 7B13\".", |h, _| text(&cpu(h)?.model)),
    one("cpu.vendor", Text, "CPU vendor id: \"GenuineIntel\", \"AuthenticAMD\".", |h, _| text(&cpu(h)?.vendor)),
    one("cpu.sockets", Integer, "Physical CPU packages.", |h, _| int(cpu(h)?.sockets?)),
    one("cpu.cores", Integer, "Physical cores across all sockets.", |h, _| int(cpu(h)?.physical_cores?)),
    one("cpu.threads", Integer, "Logical CPUs online (what nproc counts).", |h, _| int(cpu(h)?.logical_cores)),
    one("cpu.mhz", Integer, "Nominal or current frequency, MHz.", |h, _| int_u64(cpu(h)?.frequency_mhz?)),
    one("memory.total", Size, "Usable RAM (MemTotal).", |h, _| Some(Value::Size(memory(h)?.total_bytes))),
    one("memory.swap", Size, "Total swap.", |h, _| Some(Value::Size(memory(h)?.swap_total_bytes))),
    one("memory.modules", Integer, "Installed memory modules (unknown when dmidecode could not read them).", |h, _| {
        let hw = hardware(h)?;
        if unreadable(&hw.unreadable, "memory_modules") { None } else { int_u64(hw.memory_modules.len() as u64) }
    }),
    // --- hardware
    one("hardware.vendor", Text, "System manufacturer, e.g. \"LENOVO\", \"Dell Inc.\".", |h, _| opt_text(&system(h)?.vendor)),
    one("hardware.model", Text, "Product name, e.g. \"ThinkPad X1 Carbon Gen 11\".", |h, _| opt_text(&system(h)?.model)),
    one("hardware.serial", Text, "System serial number.", |h, _| opt_text(&system(h)?.serial)),
    one("hardware.chassis", Text, "Chassis type, e.g. \"Notebook\", \"Rack Mount Chassis\".", |h, _| opt_text(&system(h)?.chassis_type)),
    one("bios.vendor", Text, "BIOS/UEFI vendor.", |h, _| opt_text(&system(h)?.bios_vendor)),
    one("bios.version", Text, "BIOS/UEFI version.", |h, _| opt_text(&system(h)?.bios_version)),
    one("bios.date", Text, "BIOS/UEFI release date as the firmware writes it (\"MM/DD/YYYY\").", |h, _| opt_text(&system(h)?.bios_date)),
    one("virtualization", Text, "\"vm\", \"container\" or \"none\".", |h, _| text(&virtualization(h)?.kind)),
    one("virtualization.technology", Text, "e.g. \"kvm\", \"vmware\", \"docker\", \"lxc\".", |h, _| {
        opt_text(&virtualization(h)?.technology)
    }),
    many("disk.name", Text, "Kernel name of a disk: \"sda\", \"nvme0n1\".", each!(disk_members, |d| text(&d.name))),
    many("disk.model", Text, "Disk model.", each!(disk_members, |d| opt_text(&d.model))),
    many("disk.serial", Text, "Disk serial number.", each!(disk_members, |d| opt_text(&d.serial))),
    many("disk.size", Size, "Disk capacity.", each!(disk_members, |d| Some(Value::Size(d.size_bytes)))),
    many("disk.kind", Text, "\"rotational\", \"ssd\", \"nvme\" or \"unknown\".", each!(disk_members, |d| text(&d.kind))),
    many("disk.removable", Bool, "Removable medium (USB stick, SD card).", each!(disk_members, |d| Some(Value::Bool(d.removable)))),
    many(
        "disk.smart_passed",
        Bool,
        "SMART self-assessment; false: the drive predicts its failure.",
        each!(disk_members, |d| d.smart.as_ref().and_then(|s| s.passed).map(Value::Bool)),
    ),
    many(
        "disk.temperature",
        Integer,
        "Disk temperature, degrees Celsius (SMART).",
        each!(disk_members, |d| d.smart.as_ref().and_then(|s| s.temperature_celsius).map(Value::Integer)),
    ),
    many(
        "disk.power_on_hours",
        Integer,
        "Disk power-on time, hours (SMART).",
        each!(disk_members, |d| d.smart.as_ref().and_then(|s| s.power_on_hours).and_then(int_u64)),
    ),
    many("gpu.vendor", Text, "Display controller vendor, e.g. \"NVIDIA\".", each!(gpu_list, |g| opt_text(&g.vendor))),
    many("gpu.model", Text, "Display controller model, where the OS names it.", each!(gpu_list, |g| opt_text(&g.model))),
    many("gpu.driver", Text, "Bound kernel driver, e.g. \"nvidia\", \"amdgpu\".", each!(gpu_list, |g| opt_text(&g.driver))),
    many("battery.charge", Percent, "Current charge.", each!(battery_list, |b| b.capacity_percent.map(|p| Value::Percent(p.into())))),
    many(
        "battery.health",
        Percent,
        "Full capacity now vs. as designed (100% is new).",
        each!(battery_list, |b| b.health_percent.map(Value::Percent)),
    ),
    many("battery.cycles", Integer, "Charge cycles.", each!(battery_list, |b| b.cycle_count.and_then(int))),
    many(
        "battery.status",
        Text,
        "\"Charging\", \"Discharging\", \"Full\", \"Not charging\".",
        each!(battery_list, |b| opt_text(&b.status)),
    ),
    // --- filesystems
    many("fs.mount", Text, "Mount point of a filesystem, e.g. \"/\", \"C:\\\\\".", each!(fs_members, |f| text(&f.mount_point))),
    many("fs.device", Text, "Source device, e.g. \"/dev/nvme0n1p2\".", each!(fs_members, |f| text(&f.device))),
    many("fs.type", Text, "Filesystem type, e.g. \"ext4\", \"xfs\", \"NTFS\".", each!(fs_members, |f| text(&f.fs_type))),
    many("fs.size", Size, "Filesystem size.", each!(fs_members, |f| Some(Value::Size(f.total_bytes)))),
    many(
        "fs.used",
        Size,
        "Used space (size minus free).",
        each!(fs_members, |f| Some(Value::Size(f.total_bytes.saturating_sub(f.free_bytes)))),
    ),
    many("fs.free", Size, "Space available to unprivileged users.", each!(fs_members, |f| Some(Value::Size(f.available_bytes)))),
    many("fs.used_percent", Percent, "Used space as df's Use% computes it.", each!(fs_members, |f| used_percent(f))),
    many(
        "fs.inodes_used_percent",
        Percent,
        "Used inodes; unknown where there is no inode table.",
        each!(fs_members, |f| inodes_used_percent(f)),
    ),
    many("fs.read_only", Bool, "Mounted read-only.", each!(fs_members, |f| Some(Value::Bool(f.read_only)))),
    many("fs.encrypted", Bool, "On a dm-crypt device (from the OS state section).", each!(fs_members, |h, f| encrypted(h, f))),
    // --- network
    many("interface.name", Text, "Network interface name, e.g. \"eth0\".", each!(interface_members, |i| text(&i.name))),
    many(
        "interface.ip",
        Text,
        "An address of an interface, e.g. \"10.0.0.5\", \"2001:db8::1\".",
        each!(interface_members, |i| i.addresses.iter().map(|a| Value::Text(&a.address))),
    ),
    many("interface.mac", Text, "MAC address, lower-case with colons.", each!(interface_members, |i| opt_text(&i.mac))),
    many("interface.state", Text, "Operational state: \"up\", \"down\", ...", each!(interface_members, |i| text(&i.oper_state))),
    many("interface.speed", Integer, "Link speed, Mbit/s.", each!(interface_members, |i| i.speed_mbps.and_then(int))),
    many("interface.mtu", Integer, "MTU, bytes.", each!(interface_members, |i| i.mtu.and_then(int))),
    many(
        "ip",
        Text,
        "Any address of any interface (shorthand for interface.ip).",
        each!(interface_members, |i| i.addresses.iter().map(|a| Value::Text(&a.address))),
    ),
    many("mac", Text, "Any MAC address (shorthand for interface.mac).", each!(interface_members, |i| opt_text(&i.mac))),
    many("gateway", Text, "A default gateway address.", each!(gateway_list, |g| text(&g.gateway))),
    many("dns.server", Text, "A DNS resolver in use (behind the systemd-resolved stub too).", each!(dns_server_list, |s| text(s))),
    many("dns.search", Text, "A DNS search domain.", each!(dns_search_list, |s| text(s))),
    many("listening.port", Integer, "A listening TCP or bound UDP port.", each!(listening_list, |s| int(s.port))),
    many("listening.protocol", Text, "\"tcp\" or \"udp\" of a listening socket.", each!(listening_list, |s| text(&s.protocol))),
    many("listening.address", Text, "Bound address of a listening socket, e.g. \"0.0.0.0\".", each!(listening_list, |s| text(&s.address))),
    many(
        "listening.process",
        Text,
        "Name of a process holding a listening socket.",
        each!(listening_list, |s| s.processes.iter().filter_map(|p| opt_text(&p.name))),
    ),
    // --- software
    many("software.name", Text, "Name of an installed package.", each!(package_members, |p| text(&p.name))),
    many(
        "software.version",
        Version,
        "Installed version, ordered by its source's rules (dpkg, rpm, apk, pacman, else generic).",
        each!(package_members, |p| Some(Value::Version(&p.version, Ecosystem::for_source(&p.source)))),
    ),
    many(
        "software.source",
        Text,
        "\"dpkg\", \"rpm\", \"apk\", \"pacman\", \"snap\", \"flatpak\", \"windows_registry\", ...",
        each!(package_members, |p| text(&p.source)),
    ),
    many("software.arch", Text, "Package architecture, e.g. \"amd64\", \"noarch\".", each!(package_members, |p| opt_text(&p.arch))),
    many("software.vendor", Text, "Vendor, publisher or maintainer.", each!(package_members, |p| opt_text(&p.vendor))),
    many(
        "software.installed_at",
        Time,
        "When the package was installed, where the source records it.",
        each!(package_members, |p| p.install_time_unix_ms.map(Value::Time)),
    ),
    // --- pending updates
    many("update.name", Text, "Package (or update title) with an available update.", each!(update_members, |u| text(&u.name))),
    many(
        "update.available",
        Version,
        "Version the update would install.",
        each!(update_members, |u| Some(Value::Version(&u.available_version, update_ecosystem(&u.source)))),
    ),
    many(
        "update.installed",
        Version,
        "Version installed now, when the source says.",
        each!(update_members, |u| u.installed_version.as_deref().map(|v| Value::Version(v, update_ecosystem(&u.source)))),
    ),
    many(
        "update.source",
        Text,
        "\"apt\", \"dnf\", \"apk\", \"pacman\", \"windows_update\", \"mac_softwareupdate\".",
        each!(update_members, |u| text(&u.source)),
    ),
    many("update.security", Bool, "The update is marked as a security update.", each!(update_members, |u| Some(Value::Bool(u.security)))),
    many(
        "update.origin",
        Text,
        "Where the update comes from (apt origin/codename, dnf repository).",
        each!(update_members, |u| opt_text(&u.origin)),
    ),
    one("updates.count", Integer, "Pending updates; unknown when an update source failed.", |h, _| update_count(h, |_| true)),
    one("updates.security", Integer, "Pending security updates; unknown when an update source failed.", |h, _| {
        if updates(h).is_some_and(|s| unreadable(&s.unreadable, "updates.security")) {
            return None;
        }
        update_count(h, |u| u.security)
    }),
    // --- services
    many("service.name", Text, "Service name, e.g. \"ssh.service\", \"wuauserv\".", each!(service_members, |s| text(&s.name))),
    many(
        "service.state",
        Text,
        "What it is doing: systemd's sub state (\"running\", \"exited\", \"dead\", \"failed\"), else the manager's (\"running\", \"stopped\").",
        each!(service_members, |s| opt_text(&s.sub_state).or_else(|| opt_text(&s.active_state))),
    ),
    many(
        "service.active_state",
        Text,
        "\"active\", \"inactive\", \"failed\" (systemd); \"running\", \"stopped\".",
        each!(service_members, |s| opt_text(&s.active_state)),
    ),
    many(
        "service.enabled",
        Text,
        "Start-up setting: \"enabled\", \"disabled\", \"static\", \"automatic\", \"manual\".",
        each!(service_members, |s| opt_text(&s.enabled)),
    ),
    many(
        "service.load_state",
        Text,
        "systemd load state: \"loaded\", \"not-found\", \"masked\".",
        each!(service_members, |s| opt_text(&s.load_state)),
    ),
    many("service.description", Text, "Service description.", each!(service_members, |s| opt_text(&s.description))),
    one("services.manager", Text, "\"systemd\", \"systemd_unit_files_only\", \"windows_scm\", \"launchd\".", |h, _| {
        text(&services(h)?.manager)
    }),
    one("services.failed", Integer, "Units in the failed state.", |h, _| int_u64(services(h)?.failed.len() as u64)),
    // --- users
    many("user.name", Text, "A local account's login name.", each!(account_members, |a| text(&a.name))),
    many("user.uid", Integer, "User id (Windows: the relative id).", each!(account_members, |a| int(a.uid))),
    many("user.home", Text, "Home directory.", each!(account_members, |a| text(&a.home))),
    many("user.shell", Text, "Login shell.", each!(account_members, |a| opt_text(&a.shell))),
    many("user.login", Bool, "The shell allows an interactive login.", each!(account_members, |a| Some(Value::Bool(a.login)))),
    many(
        "user.admin",
        Bool,
        "The account has administrative rights (sudo, wheel, admin).",
        each!(account_members, |h, a| {
            users(h).filter(|u| !unreadable(&u.unreadable, "admins")).map(|u| Value::Bool(u.admins.contains(&a.name)))
        }),
    ),
    many(
        "user.last_login",
        Time,
        "The account's most recent login.",
        each!(account_members, |h, a| {
            users(h).into_iter().flat_map(|u| &u.last_logins).filter(|l| l.user == a.name).map(|l| Value::Time(l.time_unix_ms))
        }),
    ),
    many("admin", Text, "An account with administrative rights.", each!(admin_list, |s| text(s))),
    many("session.user", Text, "A logged-in user (current sessions).", each!(session_list, |s| text(&s.user))),
    // --- OS state
    one("pending_reboot", Bool, "The OS asks for a reboot.", |h, _| Some(Value::Bool(os_state(h)?.pending_reboot.as_ref()?.required))),
    one("secure_boot", Text, "\"enabled\", \"disabled\", \"unsupported_by_firmware\", \"not_applicable_legacy_bios\".", |h, _| {
        opt_text(&os_state(h)?.secure_boot)
    }),
    one("root_encrypted", Bool, "\"/\" sits on an encrypted device.", |h, _| os_state(h)?.root_encrypted.map(Value::Bool)),
    // --- certificates
    many("certificate.path", Text, "File a certificate was found in.", each!(certificate_members, |c| text(&c.path))),
    many("certificate.subject", Text, "Subject DN, e.g. \"CN=www.example.org\".", each!(certificate_members, |c| text(&c.subject))),
    many("certificate.issuer", Text, "Issuer DN.", each!(certificate_members, |c| text(&c.issuer))),
    many(
        "certificate.san",
        Text,
        "A subject alternative name: \"DNS:host\", \"IP:addr\".",
        each!(certificate_members, |c| c.sans.iter().map(|s| Value::Text(s))),
    ),
    many(
        "certificate.location",
        Text,
        "\"trust_store\", \"service\" or \"configured\".",
        each!(certificate_members, |c| text(&c.location)),
    ),
    many("certificate.not_before", Time, "Start of validity.", each!(certificate_members, |c| Some(Value::Time(c.not_before_unix_ms)))),
    many(
        "certificate.expires",
        Time,
        "End of validity (notAfter).",
        each!(certificate_members, |c| Some(Value::Time(c.not_after_unix_ms))),
    ),
    many(
        "certificate.self_signed",
        Bool,
        "Issuer is the subject and the certificate's own key verifies it.",
        each!(certificate_members, |c| Some(Value::Bool(c.self_signed))),
    ),
    many("certificate.ca", Bool, "basicConstraints CA:TRUE.", each!(certificate_members, |c| Some(Value::Bool(c.is_ca)))),
    many("certificate.serial", Text, "Serial number, lower-case hex.", each!(certificate_members, |c| text(&c.serial))),
    many(
        "certificate.fingerprint",
        Text,
        "SHA-256 of the DER, lower-case hex.",
        each!(certificate_members, |c| text(&c.sha256_fingerprint)),
    ),
    one("certificates.count", Integer, "Certificates found.", |h, _| int_u64(certificates(h)?.certificates.len() as u64)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_and_collections_have_their_fields() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert_eq!(f.name, f.name.to_ascii_lowercase());
            assert!(f.name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
            if f.collection().is_some() {
                assert!(f.is_multi(), "{} is a member field and must be read with its key", f.name);
            }
        }
        for c in COLLECTIONS {
            assert!(lookup(c.key_field).is_some_and(|f| f.ty == Type::Text), "{}", c.key_field);
            assert!(c.default_field.is_none_or(|d| lookup(d).is_some()), "{}", c.name);
            assert!(lookup(c.name).is_none(), "{} is both a collection and a field", c.name);
        }
    }

    #[test]
    fn suggests_the_closest_name() {
        let names = || FIELDS.iter().map(|f| f.name);
        assert_eq!(closest("os.nmae", names()), Some("os.name"));
        assert_eq!(closest("memory.totl", names()), Some("memory.total"));
        assert_eq!(closest("HOSTNAM", names()), Some("hostname"));
        assert_eq!(closest("colour", names()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn keys_are_globs_and_services_may_leave_out_their_suffix() {
        let service = collection("service").unwrap();
        assert!(Key::new("sshd", service).matches("sshd.service"));
        assert!(Key::new("ssh*", service).matches("ssh.service"));
        assert!(!Key::new("ssh", service).matches("sshd.service"));
        let software = collection("software").unwrap();
        assert!(Key::new("linux-image-*", software).matches("linux-image-6.1.0-18-amd64"));
        assert!(!Key::new("openssl", software).matches("openssl.service"));
    }
}
