"""HTTP simulators of the sources, for tests, benchmarks and demos; they know nothing of the connectors.

``pi_web_api``: PI Web API (:class:`~naia_backfill.simulators.pi_web_api.PiSimulator`, ``serve``, ``main``),
built from ``pi_data`` (deterministic history), ``pi_json`` (TimedValue JSON), ``pi_time`` (PI time
strings), ``pi_routes`` (resources) and ``pi_http`` (the server). ``pi_bench`` measures it; ``pi_fixtures``
records the JSON fixtures in ``naia_backfill_tests/fixtures/pi_web_api``.
"""
