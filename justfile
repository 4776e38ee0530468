# sked's entry points. CI runs `.ci/run`, which runs the same commands as these recipes.

# Start Redis and the broker (installs them when missing).
stack-up:
    scripts/dev-stack.sh up

stack-down:
    scripts/dev-stack.sh down

# The main job, locally: stack, topics, services, sample requests, their effect.
demo:
    scripts/demo.sh

# Every test against the real Redis and broker.
test *ARGS:
    scripts/test.sh {{ARGS}}

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The fuzz properties with millions of cases, in release mode (docs/reliability.md).
fuzz *ARGS:
    scripts/fuzz.sh {{ARGS}}

# Ingest throughput, latency and Redis bytes per pending job.
bench-ingest *ARGS:
    scripts/bench.sh ingest {{ARGS}}

# The chaos suite: kills, a Redis restart and a broker pause under load (default 2 minutes).
chaos *ARGS:
    scripts/chaos.sh {{ARGS}}

ci:
    .ci/run
