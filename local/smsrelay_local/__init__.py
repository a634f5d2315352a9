"""smsrelay's local side: vendor simulators, the local stack, demo and benchmarks (not deployed)."""
