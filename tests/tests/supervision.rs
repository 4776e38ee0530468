//! The supervised runtime (supervise::Tasks): an essential task that fails turns `/readyz` 503
//! and ends the process non-zero within its drain deadline. The failure comes from the
//! test-only fault hook (`SKED_TEST_FAIL_TASK`, feature `fault-hooks` of sked-core).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sked_e2e::{Proc, create_topics, test_config, test_sets, unique, worker::worker_sets};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn readyz(port: u16) -> Option<StatusCode> {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .ok()
        .map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_essential_task_turns_readiness_off_and_ends_the_process_non_zero() {
    let ns = unique("supervise");
    create_topics(&test_config(&ns, &[]), 1).await;
    let port = free_port();
    let mut sets = test_sets(&ns);
    sets.extend(worker_sets(&ns));
    sets.push(format!("admin.listen_addr=127.0.0.1:{port}"));
    let mut proc = Proc::start_with_env(
        "sked-worker",
        &sets,
        &[
            ("SKED_TEST_FAIL_TASK", "consumer"),
            ("SKED_TEST_FAIL_AFTER_MS", "4000"),
        ],
    );
    let started = Instant::now();
    let mut ready_seen = false;
    let mut not_ready_seen = false;
    let status = loop {
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            break status;
        }
        match readyz(port).await {
            Some(StatusCode::OK) => ready_seen = true,
            Some(StatusCode::SERVICE_UNAVAILABLE) if ready_seen => not_ready_seen = true,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the worker did not exit after its consumer task failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ready_seen, "the worker was ready before the fault");
    assert!(not_ready_seen, "/readyz turned 503 after the fault");
    assert!(!status.success(), "exit status {status}: non-zero");
    // worker.drain_timeout is 10 s in the tests: fault at 4 s, exit within the drain.
    assert!(
        started.elapsed() < Duration::from_secs(4 + 10 + 8),
        "exited {:?} after start",
        started.elapsed()
    );
}
