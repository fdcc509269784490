//! Stack depth and time budget of one evaluation.
//!
//! The engine has no step counter or timer, but (patched, see
//! `rust/vendor/README.md`) it consults a thread-local interrupt flag on every
//! Jsonnet function call, every array element it visits and every lazy value
//! it evaluates, so native loops (`std.join` over a lazily concatenated array
//! of 2^30 elements) are check points too. A watchdog thread looks at the
//! threads that evaluate templates every [`TIME_BUDGET`]; a thread found in
//! the same evaluation twice in a row is sent a signal whose handler (running
//! on that thread) sets the flag, so the next check point fails and the error
//! unwinds the evaluation, which is then reported as over budget. The flag is
//! cleared when the evaluation ends. The length limits of strings and arrays
//! built by `+` ([`MAX_STRING_LENGTH`], [`MAX_ARRAY_LENGTH`]) are set here as
//! well: a string or array doubled thirty times costs nothing to build, but
//! flattening the string takes 8 GiB, and `std.map` over the array allocates
//! 24 bytes per element up front (25 GiB: an allocation failure aborts).
//!
//! Per record this costs two relaxed atomic increments; the watchdog wakes
//! [`TIME_BUDGET`]⁻¹ times a second while templates are in use.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jrsonnet_evaluator::stack::{
    clear_interrupt, interrupt, limit_stack_depth, set_max_array_length, set_max_string_length,
    StackDepthLimitOverrideGuard,
};

use super::{MAX_ARRAY_LENGTH, MAX_STACK_DEPTH, MAX_STRING_LENGTH, TIME_BUDGET};

/// One thread that evaluates templates.
struct Slot {
    thread: libc::pthread_t,
    /// Odd while an evaluation runs; incremented at its start and end.
    sequence: AtomicU64,
}

struct Registry {
    /// Forked children inherit the registry but not the watchdog or the threads.
    pid: u32,
    slots: Vec<Arc<Slot>>,
    watchdog: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { pid: 0, slots: Vec::new(), watchdog: false });

/// The signal of the watchdog, or `None` when it could not be installed
/// (another library handles it): then only the depth limit and size caps apply.
static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();

thread_local! {
    static SLOT: ThreadSlot = ThreadSlot::register();
    /// Set while this thread evaluates; read by the signal handler.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Set by the signal handler when the running evaluation is over budget.
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
}

/// Deregisters the thread when it exits, so the watchdog never signals a
/// thread id that may have been reused.
struct ThreadSlot(Option<Arc<Slot>>);

impl ThreadSlot {
    fn register() -> ThreadSlot {
        let Some(_) = signal() else {
            return ThreadSlot(None);
        };
        let slot = Arc::new(Slot {
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
            sequence: AtomicU64::new(0),
        });
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if registry.pid != pid {
            registry.pid = pid;
            registry.slots.clear();
            registry.watchdog = false;
        }
        registry.slots.push(Arc::clone(&slot));
        if !registry.watchdog {
            registry.watchdog =
                std::thread::Builder::new().name("pushstream-template-watchdog".into()).spawn(watchdog).is_ok();
        }
        ThreadSlot(Some(slot))
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        if let Some(slot) = &self.0 {
            let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            registry.slots.retain(|s| !Arc::ptr_eq(s, slot));
        }
    }
}

fn watchdog() {
    let mut seen: Vec<(Arc<Slot>, u64)> = Vec::new();
    loop {
        std::thread::sleep(TIME_BUDGET);
        let Some(signal) = signal() else { return };
        let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let mut now_seen = Vec::with_capacity(registry.slots.len());
        for slot in &registry.slots {
            let sequence = slot.sequence.load(Ordering::Relaxed);
            let before = seen.iter().find(|(s, _)| Arc::ptr_eq(s, slot)).map(|(_, n)| *n);
            if sequence % 2 == 1 && before == Some(sequence) {
                // SAFETY: the slot is registered, so its thread is alive (threads
                // deregister under this lock before they exit).
                unsafe { libc::pthread_kill(slot.thread, signal) };
            }
            now_seen.push((Arc::clone(slot), sequence));
        }
        seen = now_seen;
    }
}

fn signal() -> Option<libc::c_int> {
    *SIGNAL.get_or_init(|| {
        // A real-time signal near the top of the range, unlikely to be used by
        // anything else in the process; taken only when nobody handles it yet.
        let signal = libc::SIGRTMAX() - 3;
        // SAFETY: plain sigaction calls on a zeroed struct with a valid handler.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 || current.sa_sigaction != libc::SIG_DFL {
                return None;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return None;
            }
        }
        Some(signal)
    })
}

/// Runs on the evaluating thread. Touches only constant-initialised
/// thread-locals without destructors (plain memory), which is signal safe.
extern "C" fn on_signal(_signal: libc::c_int) {
    if ARMED.get() {
        TRIPPED.set(true);
        interrupt();
    }
}

/// The budget of one running evaluation; released when dropped.
pub(super) struct Budget {
    // Field order is drop order: disarm before the depth limit is restored.
    _armed: Armed,
    _depth: StackDepthLimitOverrideGuard,
}

struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.set(false);
        clear_interrupt();
        SLOT.with(|slot| {
            if let Some(slot) = &slot.0 {
                slot.sequence.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Starts the budget of an evaluation on this thread.
pub(super) fn start() -> Budget {
    let depth = limit_stack_depth(MAX_STACK_DEPTH);
    TRIPPED.set(false);
    clear_interrupt();
    set_max_string_length(MAX_STRING_LENGTH);
    set_max_array_length(MAX_ARRAY_LENGTH);
    SLOT.with(|slot| {
        if let Some(slot) = &slot.0 {
            slot.sequence.fetch_add(1, Ordering::Relaxed);
        }
    });
    ARMED.set(true);
    Budget { _armed: Armed, _depth: depth }
}

/// Whether the evaluation that just ran was interrupted for exceeding the budget.
pub(super) fn tripped() -> bool {
    TRIPPED.get()
}
