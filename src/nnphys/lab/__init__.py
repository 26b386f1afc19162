"""The laboratory: config loading, job keys, the results store, executors, the runner, the
report and export. Depends on the studies; nothing in the core library depends on it."""
