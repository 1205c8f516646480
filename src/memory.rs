//! The process's memory as a policy call's meter sees it: the global allocator (a counting
//! wrapper, no limit of its own), and what the host holds for itself, so the meter can leave
//! it out.
//!
//! A connection to a server holds two 4 MiB packet buffers (the mysql crate reserves them,
//! and they stay mostly untouched, so they cost address space rather than resident memory).
//! A probe or a fence opens one inside a policy call, and a daemon keeps its probes'
//! connections from one call to the next: counted as the policy's, one kept connection per
//! source would fill its memory limit. Everything the host keeps is made through [`Held`],
//! which records the bytes it took, and the meter subtracts [`host_held`].

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The bytes the host's [`Held`] values took when they were made.
static HOST_HELD: AtomicUsize = AtomicUsize::new(0);

/// The bytes the process's allocator holds now.
pub fn allocated() -> usize {
    ALLOCATOR.allocated()
}

/// The bytes the host's own long-lived values ([`Held`]) took when they were made.
pub fn host_held() -> usize {
    HOST_HELD.load(Ordering::Relaxed)
}

/// What the allocator holds beyond the host's own values: what a policy call is charged for.
pub fn charged() -> usize {
    allocated().saturating_sub(host_held())
}

/// A value the host owns (a server connection), with the bytes its making allocated. Those
/// bytes count as the host's from when it is made until it is dropped; what it allocates later
/// (a buffer grown by a large result) is charged like any other allocation.
pub struct Held<T> {
    value: T,
    bytes: usize,
}

impl<T> Held<T> {
    /// Makes the value, recording what making it allocated (measured on the process's
    /// allocator, so another thread's allocations at the same moment count too).
    pub fn make<E>(make: impl FnOnce() -> Result<T, E>) -> Result<Held<T>, E> {
        let before = allocated();
        let value = make()?;
        let bytes = allocated().saturating_sub(before);
        HOST_HELD.fetch_add(bytes, Ordering::Relaxed);
        Ok(Held { value, bytes })
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        HOST_HELD.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl<T> Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Other tests allocate and free on other threads at the same time, which the allocator's
    // count includes: what a `Held` took is asserted within a wide margin, what it gives back
    // exactly (this is the only unit test that makes a `Held`).
    #[test]
    fn what_a_held_value_took_counts_as_the_hosts_until_it_is_dropped() {
        let before = host_held();
        let held = Held::make(|| Ok::<_, ()>(vec![1u8; 64 << 20])).unwrap();
        let took = host_held().saturating_sub(before);
        assert!(took >= 32 << 20, "the 64 MiB it took, give or take: {took}");
        assert_eq!(held.len(), 64 << 20);
        drop(held);
        assert_eq!(host_held(), before);
        // A value that fails to be made holds nothing.
        assert!(Held::<Vec<u8>>::make(|| Err("refused")).is_err());
        assert_eq!(host_held(), before);
    }
}
