//! The stack templates are evaluated on.
//!
//! The engine recurses natively on the shape of values a template builds: a
//! string grown by `std.foldl(function(a, b) a + "x", ...)` is a tree as deep
//! as the loop is long, and flattening or dropping it recurses once per level.
//! Such a template finishes within its time budget but needs far more stack
//! than a request thread has (granian's blocking threads have 2 MiB), so every
//! evaluation runs on a stack of its own: [`STACK_SIZE`] of address space per
//! evaluating thread, reserved once and committed by the kernel only where it
//! is touched. The time budget bounds how deep an evaluation can get (a level
//! costs at least one Jsonnet call of ~100 ns and well under 1 KiB of stack),
//! so it cannot reach the end. Pages a deep evaluation touched are given back
//! after it, so a thread keeps at most [`KEPT_BYTES`] of it in memory.
//!
//! The switch itself is a few instructions (no thread hand-over, no syscall).

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Address space reserved per evaluating thread.
pub(super) const STACK_SIZE: usize = 4 << 30;
/// Stack kept committed between evaluations.
const KEPT_BYTES: usize = 1 << 20;
/// An evaluation that ran longer than this may have touched deep stack pages.
const TRIM_AFTER: Duration = Duration::from_millis(1);

/// This thread's evaluation stack, unmapped when the thread exits.
struct Stack {
    /// Lowest usable address (null until first used).
    base: Cell<*mut u8>,
    /// Whether this thread runs on it now.
    active: Cell<bool>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let base = self.base.get();
        if !base.is_null() {
            // SAFETY: the mapping made in `base` (guard page included); nothing runs on it.
            unsafe { libc::munmap(base.sub(PAGE).cast(), STACK_SIZE + PAGE) };
        }
    }
}

const PAGE: usize = 4096;

thread_local! {
    static STACK: Stack = const { Stack { base: Cell::new(std::ptr::null_mut()), active: Cell::new(false) } };
}

fn base(stack: &Stack) -> Option<*mut u8> {
    let base = stack.base.get();
    if !base.is_null() {
        return Some(base);
    }
    let page = PAGE;
    // SAFETY: an anonymous private mapping with no address hint; the lowest
    // page is made inaccessible so that running off the end faults instead of
    // writing into whatever lies below.
    unsafe {
        let mapping = libc::mmap(
            std::ptr::null_mut(),
            STACK_SIZE + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        );
        if mapping == libc::MAP_FAILED {
            return None;
        }
        libc::mprotect(mapping, page, libc::PROT_NONE);
        let base = mapping.cast::<u8>().add(page);
        stack.base.set(base);
        Some(base)
    }
}

/// Runs `f` on this thread's evaluation stack (on the current stack when the
/// address space for it cannot be had, or when already on it).
pub(super) fn run<R>(f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut run_here = || (f.take().expect("runs once"))();
    let result = STACK.try_with(|stack| {
        if stack.active.get() {
            return None;
        }
        let base = base(stack)?;
        stack.active.set(true);
        let started = Instant::now();
        // SAFETY: `base` is page aligned and `STACK_SIZE` a multiple of the page
        // size; the callback does not unwind (a panic is caught here and resumed
        // on the thread's own stack below).
        let result = unsafe { psm::on_stack(base, STACK_SIZE, || catch_unwind(AssertUnwindSafe(&mut run_here))) };
        stack.active.set(false);
        if started.elapsed() > TRIM_AFTER {
            // SAFETY: the range lies inside this thread's mapping and nothing runs on
            // it now; the pages read back as zeros when touched again.
            unsafe { libc::madvise(base.cast(), STACK_SIZE - KEPT_BYTES, libc::MADV_DONTNEED) };
        }
        Some(result)
    });
    match result {
        Ok(Some(Ok(value))) => value,
        Ok(Some(Err(panic))) => resume_unwind(panic),
        // Already on the evaluation stack, no address space for one, or the thread is exiting.
        _ => run_here(),
    }
}
