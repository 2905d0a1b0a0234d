//! The CUDA driver library's own view of the GPUs: `dlopen("libcuda.so.1")`, `cuInit(0)`,
//! `cuDeviceGetCount`. It runs in a child process (`jetforge __cuda-probe`) because a broken
//! driver install can crash or hang the process that loads it, and `doctor` must survive that
//! to report it. The child prints one line that [`parse`] reads back.

use std::ffi::{c_int, c_void, CStr};

use super::probe::PathResult;

const LIBRARY: &CStr = c"libcuda.so.1";

/// Names of the CUresult codes a broken setup produces.
fn error_name(code: i32) -> &'static str {
    match code {
        1 => "CUDA_ERROR_INVALID_VALUE",
        2 => "CUDA_ERROR_OUT_OF_MEMORY",
        3 => "CUDA_ERROR_NOT_INITIALIZED",
        4 => "CUDA_ERROR_DEINITIALIZED",
        100 => "CUDA_ERROR_NO_DEVICE",
        101 => "CUDA_ERROR_INVALID_DEVICE",
        304 => "CUDA_ERROR_OPERATING_SYSTEM",
        803 => "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        804 => "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        999 => "CUDA_ERROR_UNKNOWN",
        _ => "CUresult",
    }
}

/// What each error usually means here, for the report.
fn error_meaning(code: i32) -> &'static str {
    match code {
        100 => "the driver sees no GPU",
        304 => "the OS call under cuInit failed: typical of containers whose device nodes or driver files do not match the host's driver",
        803 => "libcuda and the kernel driver are different versions",
        804 => "a forward-compatibility libcuda that this GPU does not support",
        _ => "the driver could not initialise",
    }
}

/// Loads the library and prints one line: `ok COUNT DRIVER_VERSION`, `error FUNCTION CODE` or
/// `missing MESSAGE`. Only ever called in the child process.
pub fn run_child() -> String {
    // SAFETY: dlopen/dlsym with valid C strings; the symbols are called with the signatures
    // the CUDA driver API documents (CUresult = int, CUdevice counts as int).
    unsafe {
        let handle = libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            let err = libc::dlerror();
            let msg = if err.is_null() {
                "dlopen failed".to_string()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            };
            return format!("missing {msg}");
        }
        let sym = |name: &CStr| -> *mut c_void { libc::dlsym(handle, name.as_ptr()) };
        let (init, count, version) = (
            sym(c"cuInit"),
            sym(c"cuDeviceGetCount"),
            sym(c"cuDriverGetVersion"),
        );
        if init.is_null() || count.is_null() {
            return "missing libcuda.so.1 lacks cuInit/cuDeviceGetCount".to_string();
        }
        let init: extern "C" fn(u32) -> c_int = std::mem::transmute(init);
        let count: extern "C" fn(*mut c_int) -> c_int = std::mem::transmute(count);
        let mut driver: c_int = 0;
        if !version.is_null() {
            let version: extern "C" fn(*mut c_int) -> c_int = std::mem::transmute(version);
            version(&mut driver);
        }
        let rc = init(0);
        if rc != 0 {
            return format!("error cuInit {rc} {driver}");
        }
        let mut n: c_int = 0;
        let rc = count(&mut n);
        if rc != 0 {
            return format!("error cuDeviceGetCount {rc} {driver}");
        }
        format!("ok {n} {driver}")
    }
}

/// Reads the child's line back.
pub fn parse(line: &str) -> PathResult {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("ok") => {
            let n: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            let driver = driver_version(words.next());
            if n == 0 {
                PathResult::failed(format!("libcuda.so.1 loaded{driver}, cuDeviceGetCount = 0"))
            } else {
                PathResult::ok(
                    format!("libcuda.so.1{driver}: cuDeviceGetCount = {n}"),
                    Some(n),
                )
            }
        }
        Some("error") => {
            let function = words.next().unwrap_or("?");
            let code: i32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(-1);
            let driver = driver_version(words.next());
            PathResult::failed(format!(
                "libcuda.so.1{driver}: {function} returned {code} ({}): {}",
                error_name(code),
                error_meaning(code)
            ))
        }
        Some("missing") => PathResult::missing(format!(
            "libcuda.so.1 cannot be loaded: {}",
            line.trim_start_matches("missing").trim()
        )),
        _ => PathResult::failed(format!("the libcuda probe printed `{line}`")),
    }
}

/// `13000` → " (driver API 13.0)".
fn driver_version(word: Option<&str>) -> String {
    match word.and_then(|w| w.parse::<i32>().ok()).filter(|v| *v > 0) {
        Some(v) => format!(" (driver API {}.{})", v / 1000, (v % 1000) / 10),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_lines() {
        assert_eq!(parse("ok 2 13000").devices(), Some(2));
        assert!(parse("ok 2 13000").detail().contains("driver API 13.0"));
        let e = parse("error cuInit 304 12060");
        assert!(matches!(e, PathResult::Failed { .. }));
        assert!(
            e.detail().contains("304 (CUDA_ERROR_OPERATING_SYSTEM)"),
            "{e:?}"
        );
        assert!(matches!(
            parse("missing libcuda.so.1: cannot open shared object file"),
            PathResult::Missing { .. }
        ));
        assert!(matches!(parse("ok 0 0"), PathResult::Failed { .. }));
        assert!(matches!(parse(""), PathResult::Failed { .. }));
    }
}
