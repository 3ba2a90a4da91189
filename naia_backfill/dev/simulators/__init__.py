"""HTTP simulators of the sources, for tests, benchmarks and demos; they know nothing of the connectors.

Each speaks its API's exact wire format on 127.0.0.1 only, from deterministic data with a truth the tests
compare against, with injectable faults and a request log.
"""
