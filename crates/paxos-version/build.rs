//! Records the git commit the binaries are built from, for `--version` and
//! `paxos_node_info`: `PAXOS_GIT_COMMIT` from the build's environment when
//! set (an image built from a context without `.git` passes it), else
//! `git rev-parse --short HEAD`, else `unknown` (no git, or not a checkout).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PAXOS_GIT_COMMIT");
    let commit = match std::env::var("PAXOS_GIT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=PAXOS_GIT_COMMIT={commit}");
}

/// The short hash of HEAD, and cargo told to run this again when HEAD moves.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // Only files that exist: a missing one would make cargo rerun this on every build.
    let git_dir = PathBuf::from(git(&["rev-parse", "--absolute-git-dir"])?);
    let common =
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map_or(git_dir.clone(), PathBuf::from);
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(&head_ref));
        watched.push(git_dir.join(&head_ref));
    }
    for path in watched.iter().filter(|p| Path::is_file(p)) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

/// The trimmed standard output of a successful `git ARGS`, if not empty.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
