//! The files a cross build's environment points at, written into the work dir before any step
//! runs: a directory holding only the target's sysconfigdata (so `PYTHONPATH` exposes nothing
//! else of the target's stdlib to the build machine's Python) and the CMake toolchain file.

use anyhow::{Context, Result};

use super::Cross;

/// Writes (or refreshes) the generated files; fails with a hint when the sysroot lacks the
/// target's sysconfigdata.
pub fn materialize(cross: &Cross) -> Result<()> {
    let source = cross.sysconfigdata_source();
    if !source.is_file() {
        return Err(crate::error::input_hint(
            format!(
                "the sysroot `{}` has no `{}`: it is not a Python {} sysroot for {}",
                cross.sysroot.display(),
                source.display(),
                cross.python_version,
                cross.platforms.host
            ),
            "make one with scripts/make-arm64-sysroot.sh DIR, or point the target's sysroot at a rootfs with the target's Python (see `jetforge doctor`)",
        ));
    }
    let dir = cross.sysconfig_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("failed to remove `{}`", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let file_name = source.file_name().expect("a file name");
    std::fs::copy(&source, dir.join(file_name)).with_context(|| {
        format!(
            "failed to copy `{}` into `{}`",
            source.display(),
            dir.display()
        )
    })?;
    let toolchain = cross.toolchain_file();
    std::fs::write(&toolchain, cross.toolchain_cmake())
        .with_context(|| format!("failed to write `{}`", toolchain.display()))
}
