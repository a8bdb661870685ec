//! Fuzz targets for every agent parser that reads outside input: package
//! databases, OS files under /proc, /sys and /etc, tool output (smartctl,
//! dmidecode, systemctl, rpm, snap, flatpak, dnf, apk, pacman, PowerShell
//! JSON, macOS tools), binary records (utmp, lastlog, EFI variables, VPD,
//! auxv), certificates, textfile metrics and the agent's config file.
//!
//! Each target is seeded from its section's fixtures and mutated by
//! `census_fuzz::run` (bounded: see that crate for `CENSUS_FUZZ_CASES` and
//! `CENSUS_FUZZ_SECONDS`). The property is the parsers' contract: any input
//! gives a value or an error, never a panic or a hang.

use std::path::Path;

use census_agent::collect::{
    certificates, hardware, identity, netconfig, os_state, powershell, services, software, system, updates, users,
};
use census_agent::health;
use census_fuzz::{lossy, run, seeds_under};

fn fixtures(section: &str) -> Vec<Vec<u8>> {
    seeds_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(section))
}

#[test]
fn fuzz_software_databases() {
    let seeds = fixtures("software");
    run("software.dpkg_status", seeds.clone(), |b| {
        let _ = software::dpkg::parse_status(&lossy(b), "status");
    });
    run("software.apk_installed", seeds.clone(), |b| {
        let _ = software::apk::parse_installed(&lossy(b), "installed");
    });
    run("software.pacman_desc", seeds.clone(), |b| {
        let _ = software::pacman::parse_desc(&lossy(b), "desc");
    });
    run("software.rpm_query", seeds.clone(), |b| {
        let _ = software::rpm::parse_query_output(&lossy(b));
    });
    run("software.snap_list", seeds.clone(), |b| {
        let _ = software::snap::parse_snap_list(&lossy(b));
    });
    run("software.flatpak_list", seeds.clone(), |b| {
        let _ = software::flatpak::parse_flatpak_list(&lossy(b));
    });
    run("software.windows_reg_query", seeds.clone(), |b| {
        let _ = software::windows::parse_reg_query(&lossy(b), "x86_64");
    });
    run("software.macos_plists", seeds, |b| {
        let _ = software::macos::parse_info_plist(b, Path::new("/Applications/X.app/Contents/Info.plist"));
        let _ = software::macos::parse_receipt(b, Path::new("/var/db/receipts/x.plist"));
    });
}

#[test]
fn fuzz_pending_updates() {
    let seeds = fixtures("updates");
    let status = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/updates/apt-dpkg-status"))
        .expect("the apt fixture's dpkg status");
    let installed = software::dpkg::parse_status(&status, "status").packages;
    let index = updates::apt::InstalledIndex::new(&installed);
    run("updates.apt_packages_and_release", seeds.clone(), |b| {
        let mut candidates = updates::apt::Candidates::default();
        let _ = updates::apt::scan_packages(b, 0, &index, &mut candidates);
        let meta = updates::apt::parse_release(b);
        let _ = updates::apt::updates(candidates, &meta.into_iter().collect::<Vec<_>>());
    });
    run("updates.dnf", seeds.clone(), |b| {
        let _ = updates::dnf::parse_check_update(&lossy(b));
        let _ = updates::dnf::parse_security_names(&lossy(b));
    });
    run("updates.apk_pacman_softwareupdate", seeds.clone(), |b| {
        let _ = updates::apk::parse_version_list(&lossy(b));
        let _ = updates::pacman::parse_query_upgrades(&lossy(b));
        let _ = updates::macos::parse_list(&lossy(b));
    });
    run("updates.windows_update_json", seeds, |b| {
        let _ = updates::windows::parse_search_json(&lossy(b));
    });
}

#[test]
fn fuzz_system_and_identity() {
    let mut seeds = fixtures("system");
    seeds.extend(fixtures("identity"));
    run("system.linux", seeds.clone(), |b| {
        let t = lossy(b);
        let _ = system::parse_os_release(&t);
        let _ = system::parse_boot_time(&t);
        let _ = system::parse_cpuinfo(&t);
        let _ = system::parse_cpu_list(&t);
        let _ = system::parse_meminfo(&t);
        let _ = system::parse_mounts(&t);
        let _ = system::parse_mac(&t);
    });
    run("identity.linux", seeds.clone(), |b| {
        let t = lossy(b);
        let _ = identity::parse_dmi_uuid(&t);
        let _ = identity::parse_machine_id(&t);
        let _ = identity::parse_hostname(&t);
        let _ = identity::parse_kernel_domainname(&t);
    });
    run("system_identity.windows_macos", seeds, |b| {
        let t = lossy(b);
        let _ = system::windows::parse_os(&t);
        let _ = system::windows::parse_cpu(&t);
        let _ = system::windows::parse_memory(&t);
        let _ = system::windows::parse_volumes(&t);
        let _ = system::windows::parse_network(&t);
        let _ = system::macos::parse_boottime(&t);
        let _ = system::macos::parse_cpu(&t);
        let _ = system::macos::parse_memory(&t);
        let _ = system::macos::parse_filesystems(&t, &t);
        let _ = system::macos::parse_ifconfig(&t);
        let _ = identity::windows::parse_identity(&t);
        let _ = identity::macos::parse_ioreg_platform_uuid(&t);
        let _ = powershell::parse_json("fuzz", &t);
        let _ = powershell::parse_date(&t);
    });
}

#[test]
fn fuzz_hardware() {
    let seeds = fixtures("hardware");
    run("hardware.dmi_dmidecode_battery_virt", seeds.clone(), |b| {
        let t = lossy(b);
        let _ = hardware::dmi::parse_dmi_value(&t, "product_name");
        let _ = hardware::dmi::parse_chassis_type(&t);
        let _ = hardware::memory::parse_dmidecode_memory(&t);
        let _ = hardware::battery::parse_power_supply_uevent("BAT0", &t);
        let _ = hardware::virt::cpuinfo_has_hypervisor_flag(&t);
        let _ = hardware::virt::container_from_environ(b);
    });
    run("hardware.smartctl_json_vpd", seeds.clone(), |b| {
        let _ = hardware::disks::parse_smartctl_json(&lossy(b), "/dev/sda");
        let _ = hardware::disks::parse_vpd_pg80(b);
    });
    run("hardware.windows_macos", seeds, |b| {
        let t = lossy(b);
        let _ = hardware::windows::parse_hardware(&t);
        let _ = hardware::macos::parse_hardware(&t, &t);
    });
}

#[test]
fn fuzz_network_configuration() {
    let seeds = fixtures("netconfig");
    run("netconfig.proc_net_resolv", seeds.clone(), |b| {
        let t = lossy(b);
        let _ = netconfig::routes::parse_ipv4_routes(&t);
        let _ = netconfig::routes::parse_ipv6_routes(&t);
        let _ = netconfig::dns::parse_resolv_conf(&t, "resolv.conf");
        for table in [netconfig::sockets::ProcNetTable::Tcp, netconfig::sockets::ProcNetTable::Udp6] {
            let _ = netconfig::sockets::parse_listening(&t, table);
        }
        let _ = netconfig::sockets::parse_socket_link(&t);
        let _ = netconfig::sockets::parse_comm(&t);
    });
    run("netconfig.windows_macos", seeds, |b| {
        let t = lossy(b);
        let _ = netconfig::windows::parse_netconfig(&t);
        let _ = netconfig::macos::parse_netstat_defaults(&t);
        let _ = netconfig::macos::parse_scutil_dns(&t);
        let _ = netconfig::macos::parse_lsof_listening(&t);
    });
}

#[test]
fn fuzz_users_services_os_state() {
    let users_seeds = fixtures("users");
    run("users.passwd_group", users_seeds.clone(), |b| {
        let _ = users::accounts::parse_passwd(&lossy(b));
        let _ = users::accounts::parse_group(&lossy(b));
    });
    run("users.utmp_lastlog", users_seeds.clone(), |b| {
        let _ = users::logins::parse_utmp(b, "wtmp");
        let _ = users::logins::parse_lastlog(b, &[(0, "root".into()), (1000, "alice".into()), (u32::MAX, "max".into())]);
    });
    run("users.windows_macos", users_seeds, |b| {
        let t = lossy(b);
        let _ = users::windows::parse_users(&t);
        let _ = users::windows::parse_quser(&t, 60);
        let _ = users::macos::parse_dscl_users(&t, &mut Vec::new());
        let _ = users::macos::parse_who(&t, 2026, -300);
        let _ = users::macos::parse_year_offset(&t);
    });
    run("services.all", fixtures("services"), |b| {
        let t = lossy(b);
        let _ = services::systemd::parse_list_units(&t);
        let _ = services::systemd::parse_list_unit_files(&t);
        let _ = services::windows::parse_services(&t);
        let _ = services::macos::parse_launchctl_list(&t);
    });
    run("os_state.all", fixtures("os_state"), |b| {
        let t = lossy(b);
        let _ = os_state::parse_timezone_file(&t);
        let _ = os_state::parse_reboot_required_pkgs(&t);
        let _ = os_state::parse_needs_restarting(Some(1), &t);
        let _ = os_state::parse_secure_boot_var(b);
        let _ = os_state::parse_mounts(&t);
        let _ = os_state::windows::parse_os_state(&t);
        let _ = os_state::macos::parse_secure_boot_policy(&t);
        let _ = os_state::macos::parse_fdesetup_status(&t);
    });
}

#[test]
fn fuzz_health_and_textfile_metrics() {
    let mut seeds = fixtures("health");
    seeds.push(b"# HELP a_b x\n# TYPE a_b gauge\na_b{x=\"1\",y=\"q\\\"\"} 3.5e3\nc 1 1700000000000\n".to_vec());
    run("health.proc", seeds.clone(), |b| {
        let t = lossy(b);
        let _ = health::parse::parse_proc_stat(&t);
        let _ = health::parse::parse_loadavg(&t);
        let _ = health::parse::parse_meminfo_health(&t);
        let _ = health::parse::parse_diskstats(&t);
        let _ = health::parse::parse_net_dev(&t);
        let _ = health::parse::parse_pid_stat(&t);
        let _ = health::parse::parse_statm(&t);
        let _ = health::parse::parse_uptime(&t);
        let _ = health::parse::parse_status_vm_rss(&t);
        let _ = health::parse::parse_systemctl_failed(&t);
        let _ = health::parse::parse_thermal_zone("x86_pkg_temp", &t);
        let _ = health::parse::parse_hwmon_temp("coretemp", 1, &t, Some(&t));
        let _ = health::parse::parse_auxv(b);
    });
    run("health.textfile_metrics", seeds, |b| {
        let _ = health::textfile::parse::parse_textfile(&lossy(b));
    });
}

#[test]
fn fuzz_certificates() {
    run("certificates.x509", fixtures("certificates"), |b| {
        let _ =
            certificates::x509::parse_file(b, "/etc/ssl/certs/x.pem", census_agent::inventory::certificates::CertificateLocation::Service);
    });
}

#[test]
fn fuzz_agent_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seeds: Vec<Vec<u8>> = ["deploy", "agent/tests/fixtures"]
        .iter()
        .flat_map(|d| seeds_under(&root.join(d)))
        .filter(|s| std::str::from_utf8(s).is_ok_and(|t| t.contains(" = ")))
        .collect();
    seeds.push(
        b"health_interval = \"15s\"\nhealth_batch_interval = \"60s\"\nspool_max_bytes = 1000000\ncertificate_paths = [\"/etc/x\"]\n"
            .to_vec(),
    );
    run("agent.config_toml", seeds, |b| {
        let _ = census_agent::config::Config::from_toml(&lossy(b), "fuzz.toml");
    });
}
