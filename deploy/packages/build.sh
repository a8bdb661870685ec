#!/usr/bin/env bash
# Builds the Census packages with the distributions' own tools:
#   census-agent_<version>_<arch>.deb       census-agent
#   census-collector_<version>_<arch>.deb   census-collector and census
#   census-agent-<version>-1.<arch>.rpm     census-agent (census-agent.spec)
# by staging a file tree per package and calling `dpkg-deb --build` and
# `rpmbuild -bb`. Needs dpkg-deb and rpmbuild (Debian: dpkg, rpm).
#
# Usage: deploy/packages/build.sh [--bin-dir DIR] [--out DIR] [--fast]
#   --bin-dir DIR  package the census-agent, census-collector and census
#                  binaries found in DIR (the tests pass their debug build);
#                  default: the shipped builds, census-agent from
#                  `cargo build --profile agent` (target/agent: size-optimised,
#                  see Cargo.toml) and the collector and CLI from
#                  `cargo build --release` (target/release)
#   --out DIR      where the packages go; default: <cargo target dir>/packages
#   --fast         gzip -1 instead of xz -6: seconds instead of minutes of
#                  CPU on debug binaries (the tests); not for distribution
# Prints one line per package: its path and its size in bytes.
#
# One source of truth: the units are deploy/systemd/*.service and the
# configuration files deploy/*.toml, as they are, except the one packaged
# setting of agent.toml (health_textfile_dir). Debug info is stripped from
# the staged copies of the binaries, as dh_strip would.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/deploy/packages"
cd "$repo"

die() { echo "build.sh: $*" >&2; exit 64; }

bin_dir=""
out=""
fast=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; bin_dir=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --fast) fast=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

for tool in dpkg dpkg-deb rpmbuild; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian packages: dpkg, rpm)"
done

target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
if [ -z "$bin_dir" ]; then
    cargo build --release --locked -p census-collector
    cargo build --profile agent --locked -p census-agent
    bin_dir="$target_dir/release"
    agent_bin_dir="$target_dir/agent"
fi
agent_bin_dir=${agent_bin_dir:-$bin_dir}
out=${out:-$target_dir/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for bin in census-collector census; do
    [ -x "$bin_dir/$bin" ] || die "$bin_dir/$bin: no such executable"
done
[ -x "$agent_bin_dir/census-agent" ] || die "$agent_bin_dir/census-agent: no such executable"

# The workspace version; a Cargo pre-release (1.2.0-rc.1) sorts before its
# release in dpkg and rpm only as 1.2.0~rc.1.
version=$(awk -F'"' '/^\[workspace\.package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in [workspace.package] of Cargo.toml"
pkg_version=${version//-/\~}
deb_version="$pkg_version-1"
deb_arch=$(dpkg --print-architecture)
case "$deb_arch" in
amd64) rpm_arch=x86_64 ;;
arm64) rpm_arch=aarch64 ;;
armhf) rpm_arch=armv7hl ;;
i386) rpm_arch=i686 ;;
ppc64el) rpm_arch=ppc64le ;;
*) rpm_arch=$deb_arch ;;
esac

if [ -n "$fast" ]; then
    deb_compression=(-Zgzip -z1)
    rpm_compression=(--define "census_payload w1.gzdio")
else
    deb_compression=(-Zxz)
    rpm_compression=()
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# stage ROOT UNIT_DIR PACKAGE BINARY...: the files of PACKAGE under ROOT.
stage() {
    local root=$1 unit_dir=$2 pkg=$3
    shift 3
    install -d -m 0755 "$root/usr/bin" "$root$unit_dir" "$root/etc/census" "$root/usr/share/doc/$pkg"
    for bin in "$@"; do
        local from=$bin_dir
        [ "$bin" = census-agent ] && from=$agent_bin_dir
        install -m 0755 "$from/$bin" "$root/usr/bin/$bin"
        if command -v strip >/dev/null; then
            strip --strip-debug "$root/usr/bin/$bin"
        fi
    done
    install -m 0644 "deploy/systemd/$pkg.service" "$root$unit_dir/"
    install -m 0644 "$here/$pkg/README" "$here/copyright" "$root/usr/share/doc/$pkg/"
    case "$pkg" in
    census-agent)
        # Packages read custom metrics from the directory postinst creates
        # (docs/config-agent.md: "Packaged setting").
        grep -qx 'health_textfile_dir = ""' deploy/agent.toml || die "deploy/agent.toml: no line health_textfile_dir = \"\""
        sed 's|^health_textfile_dir = ""$|health_textfile_dir = "/var/lib/census-agent/textfile"|' deploy/agent.toml >"$root/etc/census/agent.toml"
        chmod 0644 "$root/etc/census/agent.toml"
        ;;
    census-collector) install -m 0644 deploy/collector.toml "$root/etc/census/" ;;
    esac
}

# The shared libraries BINARY... need, as Depends: dpkg-shlibdeps when
# dpkg-dev is installed, else the newest glibc symbol version the binaries
# use (Rust's std links only libc and libgcc_s).
shlib_depends() {
    if command -v dpkg-shlibdeps >/dev/null; then
        local src="$work/shlibdeps"
        mkdir -p "$src/debian"
        printf 'Source: census\n\nPackage: census\nArchitecture: any\n' >"$src/debian/control"
        (cd "$src" && dpkg-shlibdeps -O "$@") | sed -n 's/^shlibs:Depends=//p'
    else
        local glibc
        glibc=$(grep -aoh 'GLIBC_2\.[0-9]*' "$@" | sort -uV | tail -n 1)
        echo "libc6 (>= ${glibc#GLIBC_}), libgcc-s1"
    fi
}

# build_deb PACKAGE EXTRA_DEPENDS SUMMARY DESCRIPTION BINARY...
build_deb() {
    local pkg=$1 extra_depends=$2 summary=$3 description=$4
    shift 4
    local root="$work/deb/$pkg"
    stage "$root" /lib/systemd/system "$pkg" "$@"
    install -d -m 0755 "$root/DEBIAN"
    # dpkg keeps an administrator's edits to these across upgrades.
    (cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"
    install -m 0755 "$here/$pkg/postinst" "$here/$pkg/prerm" "$here/$pkg/postrm" "$root/DEBIAN/"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    local binaries=() depends
    for bin in "$@"; do binaries+=("$root/usr/bin/$bin"); done
    depends=$(shlib_depends "${binaries[@]}")
    [ -n "$depends" ] || die "no shared library dependencies found for $pkg"
    cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $deb_version
Architecture: $deb_arch
Maintainer: Census maintainers <census@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends${extra_depends:+, $extra_depends}
Section: admin
Priority: optional
Homepage: https://example.invalid/census
Description: $summary
$description
EOF
    dpkg-deb --root-owner-group "${deb_compression[@]}" --build "$root" "$out/${pkg}_${deb_version}_${deb_arch}.deb" >/dev/null
    built+=("$out/${pkg}_${deb_version}_${deb_arch}.deb")
}

built=()
build_deb census-agent "" "Census endpoint agent (inventory and health)" \
" The endpoint agent of Census, IT asset inventory: it collects this
 machine's hardware, software, pending updates, certificates, users,
 services and health, and reports them over mutual TLS to a Census
 collector. Installs a hardened systemd unit, enabled but not started:
 enroll and start with census-agent install (see README).
 .
 Suggested: dmidecode (memory modules) and smartmontools (disk health)." \
    census-agent
# passwd: useradd and groupadd for the user census (postinst).
build_deb census-collector "passwd" "Census collector and admin CLI" \
" The central service of Census, IT asset inventory: agents enroll and
 report to it over mutual TLS, it keeps the fleet's inventory and health
 in an embedded database, raises alerts and answers the census admin CLI
 (also in this package). Runs as the system user census under a hardened
 systemd unit, enabled but not started: census-collector init first (see
 README)." \
    census-collector census

rpm_root="$work/rpm-root"
stage "$rpm_root" /usr/lib/systemd/system census-agent census-agent
rpmbuild -bb --quiet --target "$rpm_arch" \
    --define "_topdir $work/rpmbuild" \
    --define "_rpmdir $out" \
    --define "_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm" \
    --define "census_version $pkg_version" \
    --define "census_stage $rpm_root" \
    "${rpm_compression[@]}" \
    "$here/census-agent.spec" >/dev/null
built+=("$out/census-agent-$pkg_version-1.$rpm_arch.rpm")

for p in "${built[@]}"; do
    [ -f "$p" ] || die "$p was not built"
    echo "$p $(stat -c %s "$p")"
done
