//! Parsing `/proc/<pid>/task/<tid>/stat`.

use std::time::Duration;

use super::{ThreadTimes, parent_pid, parse_schedstat, parse_stat};

#[test]
fn fields_are_counted_from_the_last_parenthesis() {
    let stat = "4242 (store (sqlite) wr) S 1 4242 4242 0 -1 4194368 120 0 0 0 250 31 0 0 20 0 9 0 4400 0 0";
    assert_eq!(
        parse_stat(stat),
        Some(("store (sqlite) wr".to_owned(), 281))
    );
    assert_eq!(parse_stat("garbage"), None);
    assert_eq!(parent_pid(stat), Some(1));
    assert_eq!(
        parent_pid("77 (postgres) S 4242 77 77 0 -1 0 0 0 0 0 3 4 0 0"),
        Some(4242)
    );
}

#[test]
fn schedstat_gives_cpu_and_run_queue_wait() {
    assert_eq!(
        parse_schedstat("131862950139 18292898566 202074\n"),
        Some((
            Duration::from_nanos(131_862_950_139),
            Duration::from_nanos(18_292_898_566)
        ))
    );
    assert_eq!(parse_schedstat("0 0 1"), None);
}

#[test]
fn a_busy_thread_shows_up() {
    let before = ThreadTimes::snapshot();
    let mut spin = 0u64;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(60) {
        spin = std::hint::black_box(spin.wrapping_add(1));
    }
    let busy = ThreadTimes::snapshot().since(&before);
    if cfg!(target_os = "linux") {
        assert!(!busy.is_empty());
    }
}
