"""``python -m naia_backfill.dev.services up|down|status|env|reset [SERVICE...]`` (what scripts/services.sh runs)."""

from naia_backfill.dev.services.cli import services

services(prog_name="naia_backfill.dev.services")
