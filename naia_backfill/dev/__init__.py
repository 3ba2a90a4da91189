"""The development wing: source simulators, benchmarks and the development servers.

Nothing in the product (``naia_backfill`` outside ``dev``) imports from here; the CLI mounts these as
``naia-backfill simulate``, ``bench`` and ``services``.
"""
