//! The stress harness: oracle, faults, mutations, proptest, re-entrancy, watchdog.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

mod faults;
mod mutation;
mod oracle;
mod proptest;
mod reentrant;
mod watchdog;
