//! macOS: application bundles and installer package receipts, read directly.
//!
//! Applications are the `*.app` bundles in `/Applications` and
//! `/System/Applications` and one folder level below them (`Utilities/`,
//! vendor folders); a bundle is not searched inside. Each bundle's
//! `Contents/Info.plist` gives the name (`CFBundleName`, else
//! `CFBundleDisplayName`, else the bundle's folder name) and the version
//! (`CFBundleShortVersionString`, else `CFBundleVersion`, else empty). A
//! bundle has no vendor field, so none is invented; the bundle identifier is
//! not a vendor either.
//!
//! Receipts are `/var/db/receipts/*.plist`, one per installed `.pkg`:
//! `PackageIdentifier` is the name, `PackageVersion` the version and
//! `InstallDate` the install time.
//!
//! Property lists may be XML or binary; the `plist` crate reads both. Each
//! bundle or receipt is its own file, so a bad one (unreadable, not a plist,
//! not a dictionary, a receipt without identifier) is skipped with one error
//! naming the file; the others are kept. These readers are plain file reads
//! and compile everywhere, so they are tested on fixture trees; the agent
//! calls them only on macOS.

use std::path::{Path, PathBuf};

use super::{Listing, read_bounded_bytes, system_time_unix_ms, under_root};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

pub const APPLICATION_DIRS: [&str; 2] = ["/Applications", "/System/Applications"];
pub const RECEIPTS_DIR: &str = "/var/db/receipts";

/// Real Info.plist files and receipts are a few KiB.
pub const MAX_PLIST_BYTES: u64 = 4 * 1024 * 1024;

/// One property list file and its bytes, or why it could not be read.
#[derive(Debug)]
pub struct PlistFile {
    pub path: PathBuf,
    pub bytes: Result<Vec<u8>>,
}

/// Runs the application-bundle source on `root`: `Ok(None)` when none of
/// the application folders exists.
pub fn collect_apps(root: &Path) -> Result<Option<Listing>> {
    Ok(read_app_bundles(root)?.map(parse_app_bundles))
}

/// Runs the package-receipt source on `root`: `Ok(None)` when there is no
/// receipts folder.
pub fn collect_receipts(root: &Path) -> Result<Option<Listing>> {
    Ok(read_receipts(root)?.map(parse_receipts))
}

/// Reads `Contents/Info.plist` of every bundle, sorted by path.
pub fn read_app_bundles(root: &Path) -> Result<Option<Vec<PlistFile>>> {
    let mut bundles = Vec::new();
    let mut any_dir = false;
    for dir in APPLICATION_DIRS {
        let Some(entries) = list_dir(&under_root(root, dir))? else {
            continue;
        };
        any_dir = true;
        for path in entries {
            if is_bundle(&path) {
                bundles.push(path);
            } else if path.is_dir() {
                // One folder level down (Utilities, a vendor's folder); a
                // folder that cannot be listed is not worth failing for.
                bundles.extend(list_dir(&path).ok().flatten().unwrap_or_default().into_iter().filter(|p| is_bundle(p)));
            }
        }
    }
    if !any_dir {
        return Ok(None);
    }
    bundles.sort();
    Ok(Some(bundles.into_iter().map(|bundle| read_plist(bundle.join("Contents/Info.plist"))).collect()))
}

/// Reads every `*.plist` of the receipts folder, sorted by name.
pub fn read_receipts(root: &Path) -> Result<Option<Vec<PlistFile>>> {
    let Some(mut entries) = list_dir(&under_root(root, RECEIPTS_DIR))? else {
        return Ok(None);
    };
    entries.retain(|p| p.extension().is_some_and(|e| e == "plist"));
    entries.sort();
    Ok(Some(entries.into_iter().map(read_plist).collect()))
}

fn read_plist(path: PathBuf) -> PlistFile {
    let bytes = read_bounded_bytes(&path, MAX_PLIST_BYTES)
        .and_then(|bytes| bytes.ok_or_else(|| Error::parse(path.display().to_string(), None, "file is missing")));
    PlistFile { path, bytes }
}

fn is_bundle(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "app") && path.is_dir()
}

/// The entries of a directory, `Ok(None)` when it does not exist.
fn list_dir(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| Error::io("listing", dir, e))?.path());
    }
    Ok(Some(paths))
}

/// Parses every bundle's Info.plist read by [`read_app_bundles`].
pub fn parse_app_bundles(files: Vec<PlistFile>) -> Listing {
    parse_each(files, parse_info_plist)
}

/// Parses every receipt read by [`read_receipts`].
pub fn parse_receipts(files: Vec<PlistFile>) -> Listing {
    parse_each(files, parse_receipt)
}

fn parse_each(files: Vec<PlistFile>, parse: fn(&[u8], &Path) -> Result<Package>) -> Listing {
    let mut listing = Listing::with_capacity(files.len());
    for file in files {
        match file.bytes.and_then(|bytes| parse(&bytes, &file.path)) {
            Ok(package) => listing.packages.push(package),
            Err(error) => listing.skip(error),
        }
    }
    listing
}

/// Parses a bundle's `Contents/Info.plist` (XML or binary). `path` is that
/// file's path: it names errors, and its bundle folder is the name of last
/// resort.
pub fn parse_info_plist(bytes: &[u8], path: &Path) -> Result<Package> {
    let dict = dictionary(bytes, path)?;
    let text = |key: &str| dict.get(key).and_then(plist::Value::as_string).map(str::trim).filter(|s| !s.is_empty());
    let folder_name = path.parent().and_then(Path::parent).and_then(Path::file_stem).and_then(|s| s.to_str()).filter(|s| !s.is_empty());
    let name = text("CFBundleName")
        .or_else(|| text("CFBundleDisplayName"))
        .or(folder_name)
        .ok_or_else(|| Error::parse(path.display().to_string(), None, "bundle has no name"))?;
    let version = text("CFBundleShortVersionString").or_else(|| text("CFBundleVersion")).unwrap_or("");
    Ok(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: None,
        vendor: None,
        source: PackageSource::MacApp,
        install_time_unix_ms: None,
    })
}

/// Parses one `/var/db/receipts/*.plist` (XML or binary); `path` names errors.
pub fn parse_receipt(bytes: &[u8], path: &Path) -> Result<Package> {
    let dict = dictionary(bytes, path)?;
    let text = |key: &str| dict.get(key).and_then(plist::Value::as_string).map(str::trim).filter(|s| !s.is_empty());
    let name =
        text("PackageIdentifier").ok_or_else(|| Error::parse(path.display().to_string(), None, "receipt has no PackageIdentifier"))?;
    let install_time_unix_ms =
        dict.get("InstallDate").and_then(plist::Value::as_date).and_then(|date| system_time_unix_ms(std::time::SystemTime::from(date)));
    Ok(Package {
        name: name.to_owned(),
        version: text("PackageVersion").unwrap_or("").to_owned(),
        arch: None,
        vendor: None,
        source: PackageSource::MacPkgReceipt,
        install_time_unix_ms,
    })
}

fn dictionary(bytes: &[u8], path: &Path) -> Result<plist::Dictionary> {
    let value = plist::Value::from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| Error::parse(path.display().to_string(), None, format!("not a property list: {e}")))?;
    value.into_dictionary().ok_or_else(|| Error::parse(path.display().to_string(), None, "property list is not a dictionary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_XML: &[u8] = include_bytes!("../../../tests/fixtures/software/macos-root/Applications/Firefox.app/Contents/Info.plist");
    const CODE_BINARY: &[u8] =
        include_bytes!("../../../tests/fixtures/software/macos-root/Applications/Visual Studio Code.app/Contents/Info.plist");
    const BROKEN: &[u8] = include_bytes!("../../../tests/fixtures/software/macos-root/Applications/Broken.app/Contents/Info.plist");
    const ZOOM_XML: &[u8] = include_bytes!("../../../tests/fixtures/software/macos-root/var/db/receipts/us.zoom.pkg.videomeeting.plist");
    const CLTOOLS_BINARY: &[u8] =
        include_bytes!("../../../tests/fixtures/software/macos-root/var/db/receipts/com.apple.pkg.CLTools_Executables.plist");

    fn fixture_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/software/macos-root")
    }

    #[test]
    fn reads_xml_and_binary_info_plists() {
        let firefox = parse_info_plist(FIREFOX_XML, Path::new("/Applications/Firefox.app/Contents/Info.plist")).expect("XML plist");
        assert_eq!((firefox.name.as_str(), firefox.version.as_str()), ("Firefox", "127.0.2"));
        assert_eq!((firefox.vendor.as_deref(), firefox.arch.as_deref()), (None, None));
        assert_eq!(firefox.source, PackageSource::MacApp);
        assert!(CODE_BINARY.starts_with(b"bplist00"), "fixture is a binary plist");
        let code = parse_info_plist(CODE_BINARY, Path::new("Code.app/Contents/Info.plist")).expect("binary plist");
        assert_eq!((code.name.as_str(), code.version.as_str()), ("Code", "1.90.2"));
    }

    #[test]
    fn truncated_plist_names_the_file() {
        let path = Path::new("/Applications/Broken.app/Contents/Info.plist");
        let message = parse_info_plist(BROKEN, path).expect_err("cut XML").to_string();
        assert!(message.contains("/Applications/Broken.app/Contents/Info.plist") && message.contains("not a property list"), "{message}");
    }

    #[test]
    fn reads_xml_and_binary_receipts_with_install_dates() {
        let zoom = parse_receipt(ZOOM_XML, Path::new("zoom.plist")).expect("XML receipt");
        assert_eq!((zoom.name.as_str(), zoom.version.as_str()), ("us.zoom.pkg.videomeeting", "6.0.11.35001"));
        assert_eq!(zoom.install_time_unix_ms, Some(1_714_658_400_000), "2024-05-02T14:00:00Z");
        assert_eq!(zoom.source, PackageSource::MacPkgReceipt);
        assert!(CLTOOLS_BINARY.starts_with(b"bplist00"));
        let cltools = parse_receipt(CLTOOLS_BINARY, Path::new("cltools.plist")).expect("binary receipt");
        assert_eq!(cltools.version, "15.3.0.0.1.1708646388");
        assert_eq!(cltools.install_time_unix_ms, Some(1_718_094_605_000), "2024-06-11T08:30:05Z");
    }

    #[test]
    fn collects_bundles_one_level_deep_and_skips_bad_ones() {
        let listing = collect_apps(&fixture_root()).expect("fixture reads").expect("apps folder exists");
        let found: Vec<(&str, &str)> = listing.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(
            found,
            [("Firefox", "127.0.2"), ("NoName", "2.1"), ("Keka", "5433"), ("Code", "1.90.2"), ("Safari", "17.5"), ("Terminal", "2.14"),]
        );
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("ArrayRoot.app") && messages[0].contains("not a dictionary"), "{}", messages[0]);
        assert!(messages[1].contains("Broken.app") && messages[1].contains("not a property list"), "{}", messages[1]);
        assert!(messages[2].contains("Empty.app") && messages[2].contains("missing"), "{}", messages[2]);
    }

    #[test]
    fn collects_receipts_and_skips_bad_ones() {
        let listing = collect_receipts(&fixture_root()).expect("fixture reads").expect("receipts folder exists");
        let names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["com.apple.pkg.CLTools_Executables", "org.python.Python.PythonFramework-3.12", "us.zoom.pkg.videomeeting",]);
        assert_eq!(listing.packages[1].install_time_unix_ms, Some(1_712_740_542_000));
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("com.example.cut.plist") && messages[0].contains("not a property list"), "{}", messages[0]);
        assert!(messages[1].contains("com.example.noid.plist") && messages[1].contains("PackageIdentifier"), "{}", messages[1]);
    }

    #[test]
    fn absent_folders_are_absent() {
        let nowhere = fixture_root().join("nowhere");
        assert!(collect_apps(&nowhere).expect("absent is not an error").is_none());
        assert!(collect_receipts(&nowhere).expect("absent is not an error").is_none());
    }

    #[test]
    fn garbage_never_panics() {
        for cut in 0..CODE_BINARY.len() {
            let _ = parse_info_plist(&CODE_BINARY[..cut], Path::new("x"));
        }
        for cut in 0..FIREFOX_XML.len() {
            let _ = parse_info_plist(&FIREFOX_XML[..cut], Path::new("x"));
        }
    }
}
