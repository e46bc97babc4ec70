//! Bounds-checked access to guest linear memory.
//!
//! Every pointer and length a guest passes is untrusted: the helpers return `None` instead of
//! panicking, and host calls turn that into `Status::InvalidMemoryAccess`, as Envoy does.

use wasmtime::Caller;

use crate::abi::{raw, word, Status};
use crate::state::HostState;

/// The `len` bytes at guest address `ptr`, if they are all inside `mem`.
pub(crate) fn slice(mem: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let start = usize::try_from(word(ptr)).ok()?;
    let end = start.checked_add(usize::try_from(word(len)).ok()?)?;
    mem.get(start..end)
}

/// Mutable variant of [`slice`].
pub(crate) fn slice_mut(mem: &mut [u8], ptr: i32, len: usize) -> Option<&mut [u8]> {
    let start = usize::try_from(word(ptr)).ok()?;
    let end = start.checked_add(len)?;
    mem.get_mut(start..end)
}

/// Writes a little-endian `u32` at `ptr`.
pub(crate) fn write_u32(mem: &mut [u8], ptr: i32, value: u32) -> Option<()> {
    slice_mut(mem, ptr, 4)?.copy_from_slice(&value.to_le_bytes());
    Some(())
}

/// Writes a little-endian `u64` at `ptr`.
pub(crate) fn write_u64(mem: &mut [u8], ptr: i32, value: u64) -> Option<()> {
    slice_mut(mem, ptr, 8)?.copy_from_slice(&value.to_le_bytes());
    Some(())
}

/// Reads a little-endian `u32` at `ptr`.
pub(crate) fn read_u32(mem: &[u8], ptr: i32) -> Option<u32> {
    let bytes: [u8; 4] = slice(mem, ptr, 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Guest memory and host state, borrowed together.
pub(crate) fn mem_state<'a>(
    caller: &'a mut Caller<'_, HostState>,
) -> Option<(&'a mut [u8], &'a mut HostState)> {
    let memory = caller.data().memory?;
    Some(memory.data_and_store_mut(caller))
}

/// Copies `bytes` into memory the guest allocates, and stores its address and length at
/// `ret_ptr` / `ret_size` — the protocol of every `return_*_data` out-parameter.
///
/// Like Envoy (proxy-wasm-cpp-host `copyToPointerSize`), an empty value is returned as a null
/// pointer with length 0 and allocates nothing; the SDK reads that as an empty / absent value.
/// The allocation goes through the guest's exported `proxy_on_memory_allocate` (or `malloc`), so
/// the SDK can take ownership of the block. A trap inside the allocator propagates.
pub(crate) fn copy_to_guest(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_size: i32,
) -> wasmtime::Result<Status> {
    let (ptr, len) = if bytes.is_empty() {
        (0, 0)
    } else {
        let Ok(len) = u32::try_from(bytes.len()) else {
            return Ok(Status::InvalidMemoryAccess);
        };
        let Some(alloc) = caller.data().alloc.clone() else {
            return Ok(Status::InternalFailure);
        };
        let ptr = alloc.call(&mut *caller, raw(len))?;
        if ptr == 0 {
            return Ok(Status::InvalidMemoryAccess);
        }
        let Some((mem, _)) = mem_state(caller) else {
            return Ok(Status::InternalFailure);
        };
        let Some(dst) = slice_mut(mem, ptr, bytes.len()) else {
            return Ok(Status::InvalidMemoryAccess);
        };
        dst.copy_from_slice(bytes);
        (word(ptr), len)
    };
    let Some((mem, _)) = mem_state(caller) else {
        return Ok(Status::InternalFailure);
    };
    if write_u32(mem, ret_ptr, ptr).is_none() || write_u32(mem, ret_size, len).is_none() {
        return Ok(Status::InvalidMemoryAccess);
    }
    Ok(Status::Ok)
}

/// [`copy_to_guest`] for bytes the host prepared in its scratch buffer; the buffer is handed
/// back afterwards so returning data costs no host allocation per call.
pub(crate) fn return_scratch(
    caller: &mut Caller<'_, HostState>,
    scratch: Vec<u8>,
    ret_ptr: i32,
    ret_size: i32,
) -> wasmtime::Result<Status> {
    let result = copy_to_guest(caller, &scratch, ret_ptr, ret_size);
    let mut scratch = scratch;
    scratch.clear();
    caller.data_mut().scratch = scratch;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_inside_memory_are_returned() {
        let mem = [1u8, 2, 3, 4, 5];
        assert_eq!(slice(&mem, 1, 3), Some(&[2u8, 3, 4][..]));
        assert_eq!(slice(&mem, 5, 0), Some(&[][..]));
        assert_eq!(slice(&mem, 0, 5), Some(&mem[..]));
    }

    #[test]
    fn out_of_bounds_slices_are_refused() {
        let mem = [0u8; 8];
        assert_eq!(slice(&mem, 6, 3), None);
        assert_eq!(slice(&mem, 9, 0), None);
        // Negative i32 words are huge u32 addresses, never negative offsets.
        assert_eq!(slice(&mem, -1, 1), None);
        assert_eq!(slice(&mem, 1, -1), None);
        assert_eq!(slice(&mem, -1, -1), None);
    }

    #[test]
    fn writes_are_bounds_checked_and_little_endian() {
        let mut mem = [0u8; 12];
        assert_eq!(write_u32(&mut mem, 0, 0x0403_0201), Some(()));
        assert_eq!(&mem[..4], &[1, 2, 3, 4]);
        assert_eq!(read_u32(&mem, 0), Some(0x0403_0201));
        assert_eq!(write_u64(&mut mem, 4, u64::MAX), Some(()));
        assert_eq!(write_u32(&mut mem, 9, 1), None);
        assert_eq!(write_u64(&mut mem, 5, 1), None);
        assert_eq!(write_u32(&mut mem, -4, 1), None);
        assert_eq!(read_u32(&mem, 10), None);
        assert!(slice_mut(&mut mem, 12, 0).is_some());
        assert!(slice_mut(&mut mem, 12, 1).is_none());
    }
}
