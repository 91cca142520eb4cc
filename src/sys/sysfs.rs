// SPDX-License-Identifier: GPL-2.0

//! A directory `/sys/kernel/<name>` of attributes dispatched to a
//! [`Handler`] by index.
//!
//! 6.12 has no sysfs abstraction in the kernel crate. The attribute structs
//! live in `shim.c` (lockdep wants them static) and call
//! `lv_sysfs_show(idx, buf)` / `lv_sysfs_store(idx, buf, len)`, which land
//! here and reach the handler through two statics: one directory per module.

use super::ffi;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering::*};
use kernel::bindings;
use kernel::ffi::{c_char, c_uint};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

/// A `show` output buffer (one page).
pub(crate) struct Buf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self
            .len
            .checked_add(s.len())
            .filter(|&e| e <= self.buf.len())
            .ok_or(fmt::Error)?;
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What reads and writes of the attributes do.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Formats attribute `idx` into `b`.
    fn show(&self, idx: usize, b: &mut Buf<'_>) -> fmt::Result;
    /// Parses `input`, written to attribute `idx`, and acts on it.
    fn store(this: &Arc<Self>, idx: usize, input: &[u8]) -> Result;
}

/// The handler's show and store, for a handler type erased to `*const ()`.
struct VTable {
    show: fn(*const (), usize, &mut Buf<'_>) -> fmt::Result,
    store: fn(*const (), usize, &[u8]) -> Result,
    release: fn(*const ()),
}

struct Erased<H>(PhantomData<H>);

impl<H: Handler> Erased<H> {
    const VTABLE: VTable = VTable {
        show: Self::show,
        store: Self::store,
        release: Self::release,
    };

    /// The table, promoted to a static (a compile error if it could not be).
    fn vtable() -> &'static VTable {
        &Self::VTABLE
    }

    fn show(p: *const (), idx: usize, b: &mut Buf<'_>) -> fmt::Result {
        // SAFETY: `p` is the `Arc<H>` pointer `Dir` holds while callbacks run.
        let h = unsafe { ArcBorrow::<H>::from_raw(p.cast()) };
        h.show(idx, b)
    }

    fn store(p: *const (), idx: usize, input: &[u8]) -> Result {
        // SAFETY: as in `show`.
        let h: Arc<H> = unsafe { ArcBorrow::<H>::from_raw(p.cast()) }.into();
        H::store(&h, idx, input)
    }

    fn release(p: *const ()) {
        // SAFETY: `p` came from `Arc::into_raw` in `Dir::register`, and is
        // released once, after the last callback.
        drop(unsafe { Arc::<H>::from_raw(p.cast()) });
    }
}

static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static VTABLE: AtomicPtr<VTable> = AtomicPtr::new(core::ptr::null_mut());

/// `/sys/kernel/<name>`; dropping it removes the directory, waiting for
/// callbacks in flight, then drops the handler.
///
/// # Invariants
///
/// `kobj` is the directory's kobject; `HANDLER` and `VTABLE` hold the
/// handler (a reference count of its `Arc`) and its table from `register`
/// until `drop` has removed the directory.
pub(crate) struct Dir {
    kobj: NonNull<bindings::kobject>,
}

// SAFETY: the kobject pointer may be used from any thread.
unsafe impl Send for Dir {}
// SAFETY: `Dir` has no `&self` methods.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates `/sys/kernel/<name>` with `attrs` (name, mode; writable if
    /// the mode has the owner's write bit), served by `handler`. `EBUSY` if
    /// a directory already exists.
    pub(crate) fn register<H: Handler, const N: usize>(
        name: &'static CStr,
        attrs: &[(&'static CStr, u16); N],
        handler: Arc<H>,
    ) -> Result<Self> {
        let names = attrs.each_ref().map(|a| a.0.as_char_ptr());
        let modes = attrs.each_ref().map(|a| a.1);
        let p = Arc::into_raw(handler).cast::<()>().cast_mut();
        if HANDLER
            .compare_exchange(core::ptr::null_mut(), p, AcqRel, Acquire)
            .is_err()
        {
            Erased::<H>::release(p);
            return Err(EBUSY);
        }
        VTABLE.store(
            core::ptr::from_ref::<VTable>(Erased::<H>::vtable()).cast_mut(),
            Release,
        );
        // SAFETY: the arrays hold N static names and modes; the C side keeps
        // the name pointers, which are 'static.
        let kobj = unsafe {
            ffi::lv_sysfs_create(
                name.as_char_ptr(),
                names.as_ptr(),
                modes.as_ptr(),
                N as c_uint,
            )
        };
        match NonNull::new(kobj) {
            Some(kobj) => Ok(Dir { kobj }),
            None => {
                release_handler();
                Err(ENOMEM)
            }
        }
    }
}

fn release_handler() {
    let vt = VTABLE.swap(core::ptr::null_mut(), AcqRel);
    let p = HANDLER.swap(core::ptr::null_mut(), AcqRel);
    // SAFETY: `vt` is null or a `&'static VTable`.
    if let Some(vt) = unsafe { vt.as_ref() } {
        (vt.release)(p);
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `kobj` is our directory (type invariant); removal waits
        // for running show/store callbacks, so none runs after this.
        unsafe { ffi::lv_sysfs_remove(self.kobj.as_ptr()) };
        release_handler();
    }
}

/// The handler and its table, while the directory exists.
fn handler() -> (*const (), &'static VTable) {
    // SAFETY: callbacks run only while the directory exists, when both
    // statics are set (`Dir`'s invariants); the table is 'static.
    (HANDLER.load(Acquire), unsafe { &*VTABLE.load(Acquire) })
}

#[no_mangle]
extern "C" fn lv_sysfs_show(idx: c_uint, buf: *mut c_char) -> isize {
    // SAFETY: sysfs hands `show` a buffer of PAGE_SIZE bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut b = Buf { buf, len: 0 };
    let (h, vt) = handler();
    match (vt.show)(h, idx as usize, &mut b) {
        Ok(()) => b.len as isize,
        Err(_) => EIO.to_errno() as isize,
    }
}

#[no_mangle]
extern "C" fn lv_sysfs_store(idx: c_uint, buf: *const c_char, len: usize) -> isize {
    // SAFETY: sysfs hands `store` `len` bytes (plus a NUL we ignore).
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let (h, vt) = handler();
    match (vt.store)(h, idx as usize, input) {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}
