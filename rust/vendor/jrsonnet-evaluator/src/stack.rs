use std::{cell::Cell, marker::PhantomData};

use crate::error::{Error, ErrorKind};

struct StackLimit {
	max_stack_size: Cell<usize>,
	current_depth: Cell<usize>,
}

#[cfg(nightly)]
struct NightlyLocalKey<T>(pub T);
#[cfg(nightly)]
impl<T> NightlyLocalKey<T> {
	#[inline(always)]
	fn with<U>(&self, v: impl FnOnce(&T) -> U) -> U {
		v(&self.0)
	}
}
#[cfg(not(nightly))]
#[allow(dead_code)]
type NightlyLocalKey<T> = std::thread::LocalKey<T>;

#[cfg(nightly)]
#[macro_export]
macro_rules! const_tls {
	(const $name:ident: $t:ty = $expr:expr;) => {
		#[thread_local]
		static $name: NightlyLocalKey<$t> = NightlyLocalKey($expr);
	};
}
#[cfg(not(nightly))]
#[macro_export]
macro_rules! const_tls {
	(const $name:ident: $t:ty = $expr:expr;) => {
		thread_local! {
			static $name: $t = const { $expr };
		}
	};
}

const_tls! {
	const STACK_LIMIT: StackLimit = StackLimit {
		max_stack_size: Cell::new(200),
		current_depth: Cell::new(0),
	};
}

pub struct StackOverflowError;
impl From<StackOverflowError> for ErrorKind {
	fn from(_: StackOverflowError) -> Self {
		Self::StackOverflow
	}
}
impl From<StackOverflowError> for Error {
	fn from(_: StackOverflowError) -> Self {
		ErrorKind::StackOverflow.into()
	}
}

/// Used to implement stack depth limitation
pub struct StackDepthGuard(PhantomData<()>);
impl Drop for StackDepthGuard {
	fn drop(&mut self) {
		STACK_LIMIT.with(|limit| limit.current_depth.set(limit.current_depth.get() - 1));
	}
}

// #[cfg(feature = "nightly")]
pub fn check_depth() -> Result<StackDepthGuard, StackOverflowError> {
	check_interrupt()?;
	STACK_LIMIT.with(|limit| {
		let current = limit.current_depth.get();
		if current < limit.max_stack_size.get() {
			limit.current_depth.set(current + 1);
			Ok(StackDepthGuard(PhantomData))
		} else {
			Err(StackOverflowError)
		}
	})
}

pub struct StackDepthLimitOverrideGuard {
	old_limit: usize,
}
impl Drop for StackDepthLimitOverrideGuard {
	fn drop(&mut self) {
		STACK_LIMIT.with(|limit| limit.max_stack_size.set(self.old_limit));
	}
}

pub fn limit_stack_depth(depth_limit: usize) -> StackDepthLimitOverrideGuard {
	STACK_LIMIT.with(|limit| {
		let old_limit = limit.max_stack_size.get();
		let current_depth = limit.current_depth.get();

		limit.max_stack_size.set(current_depth + depth_limit);
		StackDepthLimitOverrideGuard { old_limit }
	})
}

/// Like [`limit_stack_depth`], but set depth is not guarded, and will be kept
///
/// Used to implement `set_max_stack` in C api, prefer to use [`limit_stack_depth`] instead
pub fn set_stack_depth_limit(depth_limit: usize) {
	std::mem::forget(limit_stack_depth(depth_limit));
}

// pushstream: an interrupt flag and length limits, so that a host can
// bound evaluations that loop inside native code (see rust/vendor/README.md).
const_tls! {
	const INTERRUPTED: std::cell::Cell<bool> = std::cell::Cell::new(false);
}
const_tls! {
	const MAX_STRING_LENGTH: Cell<usize> = Cell::new(usize::MAX);
}
const_tls! {
	const MAX_ARRAY_LENGTH: Cell<usize> = Cell::new(usize::MAX);
}

/// Makes every following [`check_depth`] and [`check_interrupt`] on this
/// thread fail, until [`clear_interrupt`]. Only writes a thread-local
/// `Cell<bool>`, so it may be called from a signal handler.
pub fn interrupt() {
	INTERRUPTED.with(|i| i.set(true));
}

pub fn clear_interrupt() {
	INTERRUPTED.with(|i| i.set(false));
}

/// Fails when the evaluation on this thread was interrupted; checked where
/// native code visits array elements and evaluates lazy values.
#[inline]
pub fn check_interrupt() -> Result<(), StackOverflowError> {
	if INTERRUPTED.with(Cell::get) {
		Err(StackOverflowError)
	} else {
		Ok(())
	}
}

/// Sets the longest string `+` may build on this thread, in bytes.
pub fn set_max_string_length(max: usize) {
	MAX_STRING_LENGTH.with(|m| m.set(max));
}

pub(crate) fn max_string_length() -> usize {
	MAX_STRING_LENGTH.with(Cell::get)
}

/// Sets the longest array concatenation (`+`, `std.flattenArrays`) may build
/// on this thread, in elements: such arrays are views that cost nothing to
/// build, but mapping or sorting one allocates per element.
pub fn set_max_array_length(max: usize) {
	MAX_ARRAY_LENGTH.with(|m| m.set(max));
}

pub(crate) fn max_array_length() -> usize {
	MAX_ARRAY_LENGTH.with(Cell::get)
}
