//! `deploy/packages/build.sh` makes the Debian packages (census-agent,
//! census-collector) and the agent's RPM from the binaries this test run
//! built (`--bin-dir`: no release build in CI; `--fast` compression).
//!
//! Always checked, without touching the machine: each package's control
//! fields, file list, owners and modes, conffiles, maintainer scripts or
//! scriptlets, and that the packaged units and configs are the deploy/
//! files; the packaged binaries run and accept the packaged agent config.
//!
//! The install round trip (`dpkg -i`, a reinstall over an edited conffile,
//! remove, purge) changes the machine, so it runs only as root with
//! `CI=true` or `CENSUS_TEST_INSTALL_PACKAGES=1`, on a machine where no
//! Census package and no user `census` exist yet; otherwise it says
//! plainly that it did not run.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use census_tests::{binary, run, text};

/// The packages one `build.sh` run made, and their sizes in bytes.
struct Built {
    agent_deb: PathBuf,
    collector_deb: PathBuf,
    agent_rpm: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Output of a command that must succeed.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Package versions: the workspace version, a Cargo pre-release `-` as `~`.
fn package_version() -> String {
    env!("CARGO_PKG_VERSION").replace('-', "~")
}

/// Builds the packages once per test binary, into this test's target tmp dir.
fn packages() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin_dir = binary("census-agent").parent().expect("the binaries' directory").to_path_buf();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packages");
        let _ = std::fs::remove_dir_all(&out);
        let started = std::time::Instant::now();
        // --fast: gzip -1, not xz; xz takes minutes of CPU on debug binaries.
        let said =
            ok(Command::new(repo().join("deploy/packages/build.sh")).arg("--fast").arg("--bin-dir").arg(&bin_dir).arg("--out").arg(&out));
        println!("build.sh took {:.1?}; packages and their sizes in bytes:\n{said}", started.elapsed());
        let find = |suffix: &str| {
            let path = said
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .find(|p| p.ends_with(suffix))
                .unwrap_or_else(|| panic!("build.sh named no *{suffix}:\n{said}"));
            assert!(Path::new(path).starts_with(&out), "{path} is outside --out {}", out.display());
            PathBuf::from(path)
        };
        let arch = dpkg_arch();
        let v = package_version();
        Built {
            agent_deb: find(&format!("/census-agent_{v}-1_{arch}.deb")),
            collector_deb: find(&format!("/census-collector_{v}-1_{arch}.deb")),
            agent_rpm: find(&format!("/census-agent-{v}-1.{}.rpm", rpm_arch(&arch))),
        }
    })
}

fn dpkg_arch() -> String {
    ok(Command::new("dpkg").arg("--print-architecture")).trim().to_string()
}

fn rpm_arch(dpkg_arch: &str) -> String {
    match dpkg_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "armhf" => "armv7hl",
        "i386" => "i686",
        "ppc64el" => "ppc64le",
        other => other,
    }
    .to_string()
}

/// `dpkg-deb -c`: path → (mode string, owner/group) of every entry.
fn deb_listing(deb: &Path) -> Vec<(String, String, String)> {
    ok(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "odd dpkg-deb -c line {l:?}");
            (f[5].trim_start_matches('.').to_string(), f[0].to_string(), f[1].to_string())
        })
        .collect()
}

fn deb_field(deb: &Path, field: &str) -> String {
    ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field)).trim().to_string()
}

/// The packaged agent.toml: deploy/agent.toml with the packaged custom metrics directory.
fn packaged_agent_toml() -> String {
    read(&repo().join("deploy/agent.toml"))
        .replace("\nhealth_textfile_dir = \"\"\n", "\nhealth_textfile_dir = \"/var/lib/census-agent/textfile\"\n")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Control fields, files, owners, modes, conffiles and scripts of one .deb.
fn check_deb(deb: &Path, package: &str, files: &[&str], conffile: &str, extra_depends: Option<&str>) {
    assert_eq!(deb_field(deb, "Package"), package);
    assert_eq!(deb_field(deb, "Version"), format!("{}-1", package_version()));
    assert_eq!(deb_field(deb, "Architecture"), dpkg_arch());
    assert_eq!(deb_field(deb, "Section"), "admin");
    assert_eq!(deb_field(deb, "Priority"), "optional");
    assert!(deb_field(deb, "Maintainer").contains('@'), "{package}: Maintainer without an address");
    assert!(!deb_field(deb, "Description").is_empty(), "{package}: no Description");
    let depends = deb_field(deb, "Depends");
    assert!(depends.starts_with("libc6 (>= "), "{package}: Depends {depends:?} lacks libc6");
    if let Some(extra) = extra_depends {
        assert!(depends.split(", ").any(|d| d == extra), "{package}: Depends {depends:?} lacks {extra}");
    }

    let listing = deb_listing(deb);
    let regular: BTreeSet<String> = listing.iter().filter(|(_, m, _)| m.starts_with('-')).map(|(p, _, _)| p.clone()).collect();
    assert_eq!(regular, set(files), "{package}: files");
    for (path, mode, owner) in &listing {
        assert_eq!(owner, "root/root", "{package}: {path} owned by {owner}");
        let want = if mode.starts_with('d') || path.starts_with("/usr/bin/") { "rwxr-xr-x" } else { "rw-r--r--" };
        assert_eq!(&mode[1..], want, "{package}: mode of {path}");
    }

    let control = |member: &str| ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg(member));
    assert_eq!(control("conffiles").trim(), conffile, "{package}: conffiles");
    for script in ["postinst", "prerm", "postrm"] {
        let source = read(&repo().join("deploy/packages").join(package).join(script));
        assert_eq!(control(script), source, "{package}: {script} is not deploy/packages/{package}/{script}");
        ok(Command::new("sh").arg("-n").arg(repo().join("deploy/packages").join(package).join(script)));
    }
}

#[test]
fn packages_hold_the_binaries_units_conffiles_and_maintainer_scripts() {
    let built = packages();
    let v = package_version();

    check_deb(
        &built.agent_deb,
        "census-agent",
        &[
            "/usr/bin/census-agent",
            "/lib/systemd/system/census-agent.service",
            "/etc/census/agent.toml",
            "/usr/share/doc/census-agent/README",
            "/usr/share/doc/census-agent/copyright",
        ],
        "/etc/census/agent.toml",
        None,
    );
    check_deb(
        &built.collector_deb,
        "census-collector",
        &[
            "/usr/bin/census-collector",
            "/usr/bin/census",
            "/lib/systemd/system/census-collector.service",
            "/etc/census/collector.toml",
            "/usr/share/doc/census-collector/README",
            "/usr/share/doc/census-collector/copyright",
        ],
        "/etc/census/collector.toml",
        Some("passwd"),
    );

    // The contents are deploy/'s files, and the binaries run.
    let dir = tempfile::tempdir().expect("temp dir");
    for deb in [&built.agent_deb, &built.collector_deb] {
        ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    }
    let x = |rel: &str| dir.path().join(rel);
    for unit in ["census-agent.service", "census-collector.service"] {
        assert_eq!(read(&x(&format!("lib/systemd/system/{unit}"))), read(&repo().join("deploy/systemd").join(unit)), "{unit}");
    }
    assert_eq!(read(&x("etc/census/collector.toml")), read(&repo().join("deploy/collector.toml")));
    assert_eq!(read(&x("etc/census/agent.toml")), packaged_agent_toml());
    assert_ne!(packaged_agent_toml(), read(&repo().join("deploy/agent.toml")), "deploy/agent.toml lost its health_textfile_dir line");
    for bin in ["census-agent", "census-collector", "census"] {
        let said = ok(Command::new(x(&format!("usr/bin/{bin}"))).arg("--version"));
        assert_eq!(said.trim(), format!("{bin} {}", env!("CARGO_PKG_VERSION")));
    }
    // The packaged agent.toml is a valid config for the packaged agent.
    let state = dir.path().join("state");
    ok(Command::new(x("usr/bin/census-agent"))
        .arg("--config")
        .arg(x("etc/census/agent.toml"))
        .arg("--state-dir")
        .arg(&state)
        .args(["status", "--root"])
        .arg(dir.path()));

    // The RPM: its files, its config file, its scriptlets.
    let rpm = |args: &[&str]| ok(Command::new("rpm").arg("-qp").args(args).arg(&built.agent_rpm));
    assert_eq!(rpm(&["--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"]), format!("census-agent {v}-1 {}", rpm_arch(&dpkg_arch())));
    let files: BTreeSet<String> = rpm(&["-l"]).lines().map(str::to_string).collect();
    assert_eq!(
        files,
        set(&[
            "/etc/census",
            "/etc/census/agent.toml",
            "/usr/bin/census-agent",
            "/usr/lib/systemd/system/census-agent.service",
            "/usr/share/doc/census-agent",
            "/usr/share/doc/census-agent/README",
            "/usr/share/doc/census-agent/copyright",
            "/var/lib/census-agent",
            "/var/lib/census-agent/textfile",
        ])
    );
    assert_eq!(rpm(&["-c"]).trim(), "/etc/census/agent.toml", "%config files");
    // Owners and modes as `rpm -qlv` shows them.
    for line in rpm(&["-lv"]).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (mode, user, group, path) = (f[0], f[2], f[3], *f.last().expect("a path"));
        assert_eq!((user, group), ("root", "root"), "{path}");
        let want = match path {
            "/var/lib/census-agent" => "drwx------",
            "/usr/bin/census-agent" => "-rwxr-xr-x",
            _ if mode.starts_with('d') => "drwxr-xr-x",
            _ => "-rw-r--r--",
        };
        assert_eq!(mode, want, "{path}");
    }
    let scripts = rpm(&["--scripts"]);
    for (scriptlet, needle) in [
        ("postinstall scriptlet", "systemctl enable census-agent.service"),
        ("preuninstall scriptlet", "systemctl disable --now census-agent.service"),
        ("postuninstall scriptlet", "systemctl try-restart census-agent.service"),
    ] {
        let body = scripts.split(scriptlet).nth(1).unwrap_or_else(|| panic!("no {scriptlet} in:\n{scripts}"));
        assert!(body.contains(needle), "{scriptlet} lacks {needle:?}:\n{scripts}");
    }
    assert!(scripts.contains("[ -d /run/systemd/system ]"), "scriptlets call systemctl only when systemd runs:\n{scripts}");
    let requires = rpm(&["--requires"]);
    assert!(requires.lines().any(|r| r.starts_with("libc.so.6(GLIBC_")), "RPM requires no glibc:\n{requires}");
}

/// The round trip's precondition, or why it does not run.
fn may_install() -> Result<(), String> {
    let asked = std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("CENSUS_TEST_INSTALL_PACKAGES").is_ok_and(|v| v == "1");
    let root = rustix::process::geteuid().is_root();
    match (root, asked) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "package install round trip NOT run: it installs and purges census-agent and census-collector on this machine, \
             so it needs root (running as root: {root}) and CI=true or CENSUS_TEST_INSTALL_PACKAGES=1 (set: {asked})"
        )),
    }
}

fn dpkg_status(package: &str) -> String {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
    text(&out.stdout)
}

/// dpkg knows nothing of `package`, or only that it is not installed.
fn absent(package: &str) -> bool {
    let status = dpkg_status(package);
    status.is_empty() || status.ends_with(" not-installed")
}

/// A passwd or group entry by name (`getent`), split on ':'.
fn getent(db: &str, name: &str) -> Option<Vec<String>> {
    let out = run(Command::new("getent").args([db, name]));
    out.status.success().then(|| text(&out.stdout).trim().split(':').map(str::to_string).collect())
}

fn dpkg(args: &[&str]) -> Output {
    let out = run(Command::new("dpkg").args(args).env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(out.status.success(), "dpkg {args:?} failed ({}):\n{}{}", out.status, text(&out.stdout), text(&out.stderr));
    out
}

/// Purges both packages when the round trip ends, even by a failed assertion.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run(Command::new("dpkg").args(["--purge", "census-agent", "census-collector"]));
    }
}

fn mode(path: &str) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.uid(), m.permissions().mode() & 0o7777)
}

#[test]
fn debs_install_keep_an_edited_conffile_on_reinstall_and_purge_cleanly() {
    if let Err(why) = may_install() {
        println!("{why}");
        eprintln!("{why}");
        return;
    }
    for package in ["census-agent", "census-collector"] {
        assert!(absent(package), "{package} is on this machine ({}): refusing to replace and purge it", dpkg_status(package));
    }
    assert!(getent("passwd", "census").is_none(), "a user census exists already: refusing to let a purge delete it");
    let built = packages();
    let started = std::time::Instant::now();
    let systemd_runs = Path::new("/run/systemd/system").is_dir();

    let _purge = Purge;
    let deb = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
    dpkg(&["-i", &deb(&built.agent_deb), &deb(&built.collector_deb)]);
    for package in ["census-agent", "census-collector"] {
        assert_eq!(dpkg_status(package), "install ok installed");
    }
    for bin in ["census-agent", "census-collector", "census"] {
        let said = ok(Command::new(format!("/usr/bin/{bin}")).arg("--version"));
        assert_eq!(said.trim(), format!("{bin} {}", env!("CARGO_PKG_VERSION")));
    }

    // postinst: the user, the state directories, systemd only when it runs.
    let user = getent("passwd", "census").expect("postinst created the user census");
    let uid: u32 = user[2].parse().expect("a numeric uid");
    assert!(uid > 0 && uid < 1000, "census is not a system user: uid {uid}");
    assert_eq!(user[5], "/var/lib/census-collector");
    assert_eq!(user[6], "/usr/sbin/nologin");
    assert!(getent("group", "census").is_some(), "postinst created the group census");
    assert_eq!(mode("/var/lib/census-collector"), (uid, 0o700));
    assert_eq!(mode("/var/lib/census-agent"), (0, 0o700));
    assert_eq!(mode("/var/lib/census-agent/textfile"), (0, 0o755));
    for unit in ["census-agent.service", "census-collector.service"] {
        let wants = Path::new("/etc/systemd/system/multi-user.target.wants").join(unit);
        if systemd_runs {
            assert_eq!(ok(Command::new("systemctl").args(["is-enabled", unit])).trim(), "enabled", "{unit}");
            let active = run(Command::new("systemctl").args(["is-active", unit]));
            assert_eq!(text(&active.stdout).trim(), "inactive", "{unit} was started before enrollment or init");
        } else {
            assert!(!wants.exists(), "postinst enabled {unit} although systemd is not running");
        }
    }

    // The documented first steps: init as the service's user leaves every
    // file of the data directory to that user; the packaged agent config
    // is valid.
    ok(Command::new("runuser").args(["-u", "census", "--", "/usr/bin/census-collector", "init"]).args([
        "--data-dir",
        "/var/lib/census-collector",
        "--san",
        "localhost",
    ]));
    assert!(Path::new("/var/lib/census-collector/pki/ca.pem").is_file());
    let mut stack = vec![PathBuf::from("/var/lib/census-collector")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read data dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            assert_eq!(meta.uid(), uid, "{} is not census's", entry.path().display());
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    ok(Command::new("/usr/bin/census-agent").args(["--config", "/etc/census/agent.toml", "status"]));

    // An edited conffile survives a reinstall: the package's copy did not
    // change, so dpkg keeps the administrator's without asking (stdin is
    // closed: a prompt would fail the command).
    let conffile = "/etc/census/agent.toml";
    let edited = format!("{}# edited by the packages test\n", read(Path::new(conffile)));
    std::fs::write(conffile, &edited).expect("editing the conffile");
    let again = dpkg(&["-i", &deb(&built.agent_deb)]);
    assert_eq!(read(Path::new(conffile)), edited, "dpkg replaced the edited conffile");
    for suffix in [".dpkg-dist", ".dpkg-new", ".dpkg-old"] {
        assert!(!Path::new(&format!("{conffile}{suffix}")).exists(), "dpkg left {conffile}{suffix}");
    }
    assert_eq!(dpkg_status("census-agent"), "install ok installed", "{}", text(&again.stdout));

    // Remove: a unit `census-agent install` wrote goes with the binary
    // (prerm); conffiles, state and the user stay.
    let override_unit = "/etc/systemd/system/census-agent.service";
    std::fs::create_dir_all("/etc/systemd/system").expect("unit dir");
    std::fs::copy("/lib/systemd/system/census-agent.service", override_unit).expect("a unit as install writes it");
    dpkg(&["-r", "census-agent", "census-collector"]);
    assert!(!Path::new(override_unit).exists(), "prerm left {override_unit}");
    for gone in ["/usr/bin/census-agent", "/usr/bin/census-collector", "/usr/bin/census", "/lib/systemd/system/census-agent.service"] {
        assert!(!Path::new(gone).exists(), "{gone} survived removal");
    }
    assert_eq!(read(Path::new(conffile)), edited, "removal touched the conffile");
    for kept in ["/etc/census/collector.toml", "/var/lib/census-agent", "/var/lib/census-collector/pki/ca.pem"] {
        assert!(Path::new(kept).exists(), "removal deleted {kept}");
    }
    assert!(getent("passwd", "census").is_some(), "removal deleted the user census");
    for package in ["census-agent", "census-collector"] {
        assert_eq!(dpkg_status(package), "deinstall ok config-files");
    }

    // Purge: everything goes.
    dpkg(&["--purge", "census-agent", "census-collector"]);
    for gone in ["/etc/census", "/var/lib/census-agent", "/var/lib/census-collector"] {
        assert!(!Path::new(gone).exists(), "{gone} survived the purge");
    }
    assert!(getent("passwd", "census").is_none(), "the purge left the user census");
    assert!(getent("group", "census").is_none(), "the purge left the group census");
    for package in ["census-agent", "census-collector"] {
        assert!(absent(package), "{package} after the purge: {}", dpkg_status(package));
    }
    println!("install round trip (install, reinstall, remove, purge) took {:.1?}", started.elapsed());
}
