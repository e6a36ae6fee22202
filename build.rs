//! Fetches the GraphiQL browser bundle at build time and puts it in `OUT_DIR`,
//! where `src/server/graphiql.rs` embeds it with `include_bytes!`.
//!
//! No third-party code is committed: the files come from pinned npm packages,
//! fetched with `npm pack` (no install, no lifecycle scripts), and every tarball
//! is checked against its pinned `dist.integrity` (sha512) before use; every
//! extracted file is checked against a pinned sha256 as well.
//!
//! Sources, in order:
//! 1. `GROUP_LICENSING_GRAPHIQL_DIR`: a folder holding the already-extracted
//!    files (the names of [`FILES`]), for builds on machines without npm or
//!    registry access. Files are verified; a wrong or missing file fails the build.
//! 2. The tarball cache (`GROUP_LICENSING_NPM_CACHE`, else
//!    `$XDG_CACHE_HOME/group-licensing/npm`, else `$HOME/.cache/group-licensing/npm`),
//!    filled by `npm pack` for whatever is not there yet. Cached tarballs are
//!    verified on every use; a damaged one is fetched again. A folder holding
//!    the three `.tgz` files of `npm pack` also serves offline builds.
//!
//! If npm is missing or the fetch fails, the build still succeeds: a
//! `cargo:warning` explains it, empty placeholders are written, and
//! `GRAPHIQL_BUNDLE=missing` makes the page say how to get the bundle.
//! An integrity mismatch of a freshly fetched tarball is a build error.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

/// One pinned npm package.
struct Package {
    name: &'static str,
    version: &'static str,
    /// `npm view NAME@VERSION dist.integrity`.
    integrity: &'static str,
}

const GRAPHIQL: Package = Package {
    name: "graphiql",
    version: "4.1.2",
    integrity: "sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg==",
};
const REACT: Package = Package {
    name: "react",
    version: "18.3.1",
    integrity: "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
};
const REACT_DOM: Package = Package {
    name: "react-dom",
    version: "18.3.1",
    integrity: "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
};

const PACKAGES: [&Package; 3] = [&GRAPHIQL, &REACT, &REACT_DOM];

/// One file taken from a package tarball.
struct File {
    package: &'static Package,
    /// Path inside the tarball, without the leading `package/`.
    path: &'static str,
    /// Name in `OUT_DIR/graphiql/` (and in `GROUP_LICENSING_GRAPHIQL_DIR`).
    out: &'static str,
    /// sha256 (hex) of the file's contents.
    sha256: &'static str,
}

const FILES: [File; 7] = [
    File {
        package: &GRAPHIQL,
        path: "graphiql.min.js",
        out: "graphiql.min.js",
        sha256: "867226ba8af5ce7949903fc53932f78dac9f4bfc6cc8da0fd3869b8bc6c5256b",
    },
    File {
        package: &GRAPHIQL,
        path: "graphiql.min.css",
        out: "graphiql.min.css",
        sha256: "30487e07635d312a63f647b140d37740a73c53332b0975bf4b1fe985ca6ec885",
    },
    File {
        package: &GRAPHIQL,
        path: "LICENSE",
        out: "graphiql.LICENSE.txt",
        sha256: "4b18fbe55c4e8f9169cb702be138f4d858a2dad920c39857204ffdc9c1c9fdc4",
    },
    File {
        package: &REACT,
        path: "umd/react.production.min.js",
        out: "react.production.min.js",
        sha256: "d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd",
    },
    File {
        package: &REACT,
        path: "LICENSE",
        out: "react.LICENSE.txt",
        sha256: "52412d7bc7ce4157ea628bbaacb8829e0a9cb3c58f57f99176126bc8cf2bfc85",
    },
    File {
        package: &REACT_DOM,
        path: "umd/react-dom.production.min.js",
        out: "react-dom.production.min.js",
        sha256: "35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d",
    },
    File {
        package: &REACT_DOM,
        path: "LICENSE",
        out: "react-dom.LICENSE.txt",
        sha256: "52412d7bc7ce4157ea628bbaacb8829e0a9cb3c58f57f99176126bc8cf2bfc85",
    },
];

const DIR_ENV: &str = "GROUP_LICENSING_GRAPHIQL_DIR";
const CACHE_ENV: &str = "GROUP_LICENSING_NPM_CACHE";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={DIR_ENV}");
    println!("cargo::rerun-if-env-changed={CACHE_ENV}");
    println!("cargo::rustc-check-cfg=cfg(graphiql_bundle)");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let dest = out_dir.join("graphiql");
    fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("creating {}: {e}", dest.display()));

    let outcome = match env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
        // The user pointed at this folder explicitly: a bad folder is an error.
        Some(dir) => Ok(from_dir(Path::new(&dir), &dest)
            .unwrap_or_else(|e| panic!("{DIR_ENV}={}: {e}", Path::new(&dir).display()))),
        None => from_npm(&dest),
    };

    match outcome {
        Ok(source) => {
            println!("cargo::rustc-cfg=graphiql_bundle");
            println!("cargo::rustc-env=GRAPHIQL_BUNDLE=embedded");
            println!("cargo::rustc-env=GRAPHIQL_BUNDLE_SOURCE={source}");
        }
        Err(reason) => {
            let reason = one_line(&reason);
            println!(
                "cargo::warning=GraphiQL bundle not embedded ({reason}). The server builds and runs, \
                 but /graphiql only explains how to get it: install Node.js/npm and rebuild \
                 (`touch build.rs`), or point {CACHE_ENV} at the `npm pack {}` tarballs, \
                 or {DIR_ENV} at the extracted files.",
                package_list()
            );
            for file in &FILES {
                write(&dest.join(file.out), b"");
            }
            println!("cargo::rustc-env=GRAPHIQL_BUNDLE=missing");
            // npm installed through a PATH change (nvm, ...) is picked up by itself.
            println!("cargo::rerun-if-env-changed=PATH");
            println!("cargo::rustc-env=GRAPHIQL_BUNDLE_SOURCE={reason}");
        }
    }
    println!("cargo::rustc-env=GRAPHIQL_PACKAGES={}", package_list());
}

/// `graphiql@4.1.2 react@18.3.1 react-dom@18.3.1`, shown on the fallback page.
fn package_list() -> String {
    PACKAGES
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Copies and verifies the already-extracted files of `dir`.
fn from_dir(dir: &Path, dest: &Path) -> Result<String, String> {
    for file in &FILES {
        let src = dir.join(file.out);
        println!("cargo::rerun-if-changed={}", src.display());
        let bytes = fs::read(&src).map_err(|e| format!("reading {}: {e}", src.display()))?;
        check_sha256(file, &bytes).map_err(|e| format!("{}: {e}", src.display()))?;
        write(&dest.join(file.out), &bytes);
    }
    Ok(format!("{DIR_ENV}={}", dir.display()))
}

/// Takes the tarballs from the cache, fetching the missing ones with `npm pack`,
/// and extracts the files. `Err` is a reason to fall back to the placeholder.
fn from_npm(dest: &Path) -> Result<String, String> {
    // Without HOME, cache in OUT_DIR: it works, only `cargo clean` makes it refetch.
    let cache = cache_dir().unwrap_or_else(|| dest.with_file_name("npm-cache"));
    fs::create_dir_all(&cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;

    // Verified tarballs, in the order of PACKAGES; `None` until fetched.
    let mut tarballs: Vec<Option<Vec<u8>>> = PACKAGES
        .iter()
        .map(|package| {
            let path = cache.join(tarball_name(package));
            let bytes = fs::read(&path).ok()?;
            match check_integrity(package, &bytes) {
                Ok(()) => Some(bytes),
                Err(e) => {
                    // A damaged cache entry is not fatal: fetch it again (and verify that).
                    println!(
                        "cargo::warning=cached {} rejected ({e}); fetching it again",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                    None
                }
            }
        })
        .collect();
    let missing: Vec<&Package> = PACKAGES
        .iter()
        .zip(&tarballs)
        .filter(|(_, t)| t.is_none())
        .map(|(p, _)| *p)
        .collect();
    if !missing.is_empty() {
        for (package, bytes) in npm_pack(&missing, &cache)? {
            let index = PACKAGES
                .iter()
                .position(|p| p.name == package.name)
                .expect("fetched a pinned package");
            tarballs[index] = Some(bytes);
        }
    }

    for (package, tarball) in PACKAGES.iter().zip(&tarballs) {
        extract(
            package,
            tarball.as_deref().expect("every tarball fetched"),
            dest,
        );
    }
    Ok(format!("npm: {}", package_list()))
}

/// Runs `npm pack` for `packages` into a scratch folder of `cache`, verifies
/// each tarball, moves it into `cache` and returns its bytes.
fn npm_pack<'p>(
    packages: &[&'p Package],
    cache: &Path,
) -> Result<Vec<(&'p Package, Vec<u8>)>, String> {
    let scratch = cache.join(format!(".fetch-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let result = npm_pack_into(packages, &scratch, cache);
    let _ = fs::remove_dir_all(&scratch);
    match result {
        Ok(fetched) => Ok(fetched),
        Err(Failure::Fallback(reason)) => Err(reason),
        // The registry served something else than the pinned package: stop the build.
        Err(Failure::Fatal(message)) => panic!("{message}"),
    }
}

enum Failure {
    /// npm is missing or the fetch failed: build without the bundle.
    Fallback(String),
    /// Integrity mismatch: fail the build.
    Fatal(String),
}

fn npm_pack_into<'p>(
    packages: &[&'p Package],
    scratch: &Path,
    cache: &Path,
) -> Result<Vec<(&'p Package, Vec<u8>)>, Failure> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let output = Command::new(npm)
        .arg("pack")
        .args(packages.iter().map(|p| format!("{}@{}", p.name, p.version)))
        .arg("--pack-destination")
        .arg(scratch)
        // `--loglevel=error` rather than `--silent`: quiet, but a failure says why.
        .args([
            "--loglevel=error",
            "--ignore-scripts",
            "--fetch-retries=1",
            "--fetch-retry-mintimeout=2000",
            "--fetch-retry-maxtimeout=5000",
            "--fetch-timeout=30000",
        ])
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .current_dir(scratch)
        .output();
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            return Err(Failure::Fallback(format!(
                "`npm pack` failed ({}): {}",
                output.status,
                npm_error(&String::from_utf8_lossy(&output.stderr))
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::Fallback("npm is not on PATH".to_owned()));
        }
        Err(e) => return Err(Failure::Fallback(format!("running npm: {e}"))),
    }
    let mut fetched = Vec::new();
    for package in packages {
        let name = tarball_name(package);
        let path = scratch.join(&name);
        let bytes = fs::read(&path).map_err(|e| {
            Failure::Fallback(format!(
                "`npm pack` did not produce {}: {e}",
                path.display()
            ))
        })?;
        check_integrity(package, &bytes).map_err(Failure::Fatal)?;
        let cached = cache.join(&name);
        fs::rename(&path, &cached).map_err(|e| {
            Failure::Fallback(format!("moving {name} to {}: {e}", cached.display()))
        })?;
        fetched.push((*package, bytes));
    }
    Ok(fetched)
}

/// The gist of npm's error output: its first lines, without the `npm error` prefixes.
fn npm_error(stderr: &str) -> String {
    let gist = stderr
        .lines()
        .map(|line| line.trim_start_matches("npm error").trim())
        .filter(|line| !line.is_empty())
        .take(4)
        .collect::<Vec<_>>()
        .join("; ");
    match gist.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &gist[..at]),
        None if gist.is_empty() => "no error output".to_owned(),
        None => gist,
    }
}

/// `npm pack` names `@scope/name` as `scope-name-VERSION.tgz`.
fn tarball_name(package: &Package) -> String {
    let name = package.name.trim_start_matches('@').replace('/', "-");
    format!("{name}-{}.tgz", package.version)
}

fn cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty(CACHE_ENV) {
        return Some(PathBuf::from(dir));
    }
    let base: Option<OsString> = non_empty("XDG_CACHE_HOME");
    let base = match base {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(non_empty("HOME").or_else(|| non_empty("USERPROFILE"))?).join(".cache")
        }
    };
    Some(base.join("group-licensing").join("npm"))
}

/// Verifies a tarball against the pinned Subresource-Integrity string.
fn check_integrity(package: &Package, tarball: &[u8]) -> Result<(), String> {
    let expected = package
        .integrity
        .strip_prefix("sha512-")
        .expect("pinned integrity values are sha512");
    let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(tarball));
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "integrity mismatch for {}@{}: expected sha512-{expected}, got sha512-{actual}. \
             The tarball is not the pinned package; refusing to embed it.",
            package.name, package.version
        ))
    }
}

fn check_sha256(file: &File, bytes: &[u8]) -> Result<(), String> {
    let actual = hex(&Sha256::digest(bytes));
    if actual == file.sha256 {
        Ok(())
    } else {
        Err(format!(
            "sha256 mismatch for {} (from {}@{}): expected {}, got {actual}",
            file.out, file.package.name, file.package.version, file.sha256
        ))
    }
}

/// Extracts this package's files from a verified tarball into `dest`.
fn extract(package: &Package, tarball: &[u8], dest: &Path) {
    let wanted: Vec<&File> = FILES
        .iter()
        .filter(|f| f.package.name == package.name)
        .collect();
    let mut found = vec![false; wanted.len()];
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let entries = archive
        .entries()
        .unwrap_or_else(|e| panic!("reading {}: {e}", tarball_name(package)));
    for entry in entries {
        let mut entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", tarball_name(package)));
        let path = entry.path().expect("tar entry path").into_owned();
        // Strip the top folder (`package/` for registry tarballs).
        let inner: PathBuf = path.components().skip(1).collect();
        let Some(index) = wanted.iter().position(|f| inner == Path::new(f.path)) else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap_or_else(|e| {
            panic!(
                "reading {} from {}: {e}",
                path.display(),
                tarball_name(package)
            )
        });
        let file = wanted[index];
        check_sha256(file, &bytes).unwrap_or_else(|e| panic!("{e}"));
        write(&dest.join(file.out), &bytes);
        found[index] = true;
        if found.iter().all(|&f| f) {
            return;
        }
    }
    let absent: Vec<&str> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, found)| !**found)
        .map(|(f, _)| f.path)
        .collect();
    panic!(
        "{} does not contain {}",
        tarball_name(package),
        absent.join(", ")
    );
}

/// Writes only when the contents differ, so `include_bytes!` inputs keep their mtime.
fn write(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `cargo::` directives are line-based.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
