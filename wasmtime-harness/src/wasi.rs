//! The WASI preview 1 functions Envoy (proxy-wasm-cpp-host) gives proxy-wasm modules, under
//! both `wasi_snapshot_preview1` and `wasi_unstable`.
//!
//! No files, no arguments, no environment. `fd_write` to stdout / stderr becomes a log entry
//! (info / error, like Envoy); clocks are the plugin's controllable clocks; `random_get` is a
//! seeded PRNG; `proc_exit` traps. The file-system stubs answer what proxy-wasm-cpp-host's do
//! (`fd_seek` / `fd_close` "succeed", `fd_read` is `ENOSYS`, `path_open` is `ENOENT`, ...).
//! Anything else (e.g. `poll_oneoff`) is not provided, so a module importing it fails to load.

use wasmtime::{Caller, Linker};

use crate::abi::{raw, word, LogLevel};
use crate::memory::{mem_state, read_u32, slice, slice_mut, write_u32, write_u64};
use crate::state::HostState;

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;

/// proxy-wasm-cpp-host's cap on one `random_get`.
const RANDOM_GET_MAX: u32 = 64 * 1024;

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;

/// `proc_exit` ends the module; the harness reports it as a trap.
#[derive(Debug, thiserror::Error)]
#[error("the module called proc_exit({0})")]
pub(crate) struct ProcExit(pub(crate) i32);

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        linker.func_wrap(module, "fd_write", fd_write)?;
        linker.func_wrap(module, "fd_read", fd_read)?;
        linker.func_wrap(module, "fd_seek", fd_seek)?;
        linker.func_wrap(module, "fd_close", fd_close)?;
        linker.func_wrap(module, "fd_fdstat_get", fd_fdstat_get)?;
        linker.func_wrap(module, "fd_prestat_get", fd_prestat_get)?;
        linker.func_wrap(module, "fd_prestat_dir_name", fd_prestat_dir_name)?;
        linker.func_wrap(module, "path_open", path_open)?;
        linker.func_wrap(module, "args_sizes_get", sizes_get)?;
        linker.func_wrap(module, "args_get", list_get)?;
        linker.func_wrap(module, "environ_sizes_get", sizes_get)?;
        linker.func_wrap(module, "environ_get", list_get)?;
        linker.func_wrap(module, "clock_time_get", clock_time_get)?;
        linker.func_wrap(module, "random_get", random_get)?;
        linker.func_wrap(module, "proc_exit", proc_exit)?;
    }
    Ok(())
}

fn fd_write(mut caller: C<'_>, fd: i32, iovs: i32, iovs_len: i32, ret_written: i32) -> R {
    let Some((mem, state)) = mem_state(&mut caller) else {
        return Ok(EFAULT);
    };
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Ok(EBADF),
    };
    let mut text = Vec::new();
    for i in 0..word(iovs_len) {
        let Some(at) = i.checked_mul(8).and_then(|o| word(iovs).checked_add(o)) else {
            return Ok(EFAULT);
        };
        let (Some(ptr), Some(len)) = (
            read_u32(mem, raw(at)),
            at.checked_add(4).and_then(|a| read_u32(mem, raw(a))),
        ) else {
            return Ok(EFAULT);
        };
        let Some(bytes) = slice(mem, raw(ptr), raw(len)) else {
            return Ok(EFAULT);
        };
        text.extend_from_slice(bytes);
    }
    let Ok(written) = u32::try_from(text.len()) else {
        return Ok(EINVAL);
    };
    if write_u32(mem, ret_written, written).is_none() {
        return Ok(EFAULT);
    }
    // One entry per non-empty write, without its trailing newline, as Envoy logs it.
    if !text.is_empty() {
        let text = text.strip_suffix(b"\n").unwrap_or(&text);
        state.log(level, String::from_utf8_lossy(text).into_owned());
    }
    Ok(SUCCESS)
}

fn fd_read(_caller: C<'_>, _fd: i32, _iovs: i32, _iovs_len: i32, _ret_read: i32) -> R {
    Ok(ENOSYS)
}

/// Like proxy-wasm-cpp-host: reports success and writes nothing.
fn fd_seek(_caller: C<'_>, _fd: i32, _offset: i64, _whence: i32, _ret: i32) -> R {
    Ok(SUCCESS)
}

/// Like proxy-wasm-cpp-host: reports success.
fn fd_close(_caller: C<'_>, _fd: i32) -> R {
    Ok(SUCCESS)
}

/// stdout and stderr are writable character devices; nothing else is open.
fn fd_fdstat_get(mut caller: C<'_>, fd: i32, ret: i32) -> R {
    if fd != 1 && fd != 2 {
        return Ok(EBADF);
    }
    let Some((mem, _)) = mem_state(&mut caller) else {
        return Ok(EFAULT);
    };
    let Some(stat) = slice_mut(mem, ret, 24) else {
        return Ok(EFAULT);
    };
    stat.fill(0);
    // fs_rights_base = FD_WRITE (64), everything else zero, as proxy-wasm-cpp-host reports.
    if let Some(base) = stat.get_mut(8..16) {
        base.copy_from_slice(&64u64.to_le_bytes());
    }
    Ok(SUCCESS)
}

/// No preopened directories: the first probe ends the search.
fn fd_prestat_get(_caller: C<'_>, _fd: i32, _ret: i32) -> R {
    Ok(EBADF)
}

fn fd_prestat_dir_name(_caller: C<'_>, _fd: i32, _path: i32, _len: i32) -> R {
    Ok(ENOSYS)
}

#[allow(clippy::too_many_arguments)] // reason: the WASI signature
fn path_open(
    _caller: C<'_>,
    _fd: i32,
    _dirflags: i32,
    _path: i32,
    _path_len: i32,
    _oflags: i32,
    _base: i64,
    _inheriting: i64,
    _fdflags: i32,
    _ret_fd: i32,
) -> R {
    Ok(ENOENT)
}

/// `args_sizes_get` / `environ_sizes_get`: nothing.
fn sizes_get(mut caller: C<'_>, ret_count: i32, ret_size: i32) -> R {
    let Some((mem, _)) = mem_state(&mut caller) else {
        return Ok(EFAULT);
    };
    if write_u32(mem, ret_count, 0).is_none() || write_u32(mem, ret_size, 0).is_none() {
        return Ok(EFAULT);
    }
    Ok(SUCCESS)
}

/// `args_get` / `environ_get`: nothing to write.
fn list_get(_caller: C<'_>, _list: i32, _buf: i32) -> R {
    Ok(SUCCESS)
}

fn clock_time_get(mut caller: C<'_>, clock: i32, _precision: i64, ret: i32) -> R {
    let Some((mem, state)) = mem_state(&mut caller) else {
        return Ok(EFAULT);
    };
    let now = match clock {
        CLOCK_REALTIME => state.now_nanos(),
        CLOCK_MONOTONIC => state.monotonic_ns,
        // process / thread CPU time: not supported by proxy-wasm-cpp-host either.
        _ => return Ok(ENOTSUP),
    };
    Ok(match write_u64(mem, ret, now) {
        Some(()) => SUCCESS,
        None => EFAULT,
    })
}

fn random_get(mut caller: C<'_>, buf: i32, len: i32) -> R {
    let Some((mem, state)) = mem_state(&mut caller) else {
        return Ok(EFAULT);
    };
    if word(len) > RANDOM_GET_MAX {
        return Ok(EINVAL);
    }
    let Ok(len) = usize::try_from(word(len)) else {
        return Ok(EFAULT);
    };
    let Some(out) = slice_mut(mem, buf, len) else {
        return Ok(EFAULT);
    };
    for chunk in out.chunks_mut(8) {
        let bytes = state.next_random().to_le_bytes();
        for (dst, src) in chunk.iter_mut().zip(bytes) {
            *dst = src;
        }
    }
    Ok(SUCCESS)
}

fn proc_exit(_caller: C<'_>, code: i32) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(ProcExit(code)))
}
