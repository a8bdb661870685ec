//! Core system sections: OS, CPU, memory, filesystems, network interfaces.
//! (Host identity is `inventory::identity`.)

use serde::Serialize;

use super::Unreadable;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Os {
    pub family: &'static str,
    pub name: String,
    pub version: Option<String>,
    pub version_id: Option<String>,
    pub id: Option<String>,
    pub id_like: Vec<String>,
    pub pretty_name: Option<String>,
    pub kernel: String,
    pub arch: String,
    pub boot_time_unix_ms: Option<i64>,
    pub timezone: Option<String>,
    pub build: Option<String>,
    /// When the OS was installed, where the OS records it (Windows).
    pub install_time_unix_ms: Option<i64>,
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cpu {
    pub model: String,
    pub vendor: String,
    pub sockets: Option<u32>,
    pub physical_cores: Option<u32>,
    pub logical_cores: u32,
    pub frequency_mhz: Option<u64>,
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub swap_total_bytes: u64,
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub available_bytes: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpAddress {
    pub address: String,
    pub prefix_len: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkInterface {
    pub name: String,
    pub mac: Option<String>,
    pub addresses: Vec<IpAddress>,
    pub oper_state: String,
    pub speed_mbps: Option<u32>,
    pub mtu: Option<u32>,
}
