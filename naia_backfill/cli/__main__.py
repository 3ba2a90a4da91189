from naia_backfill.cli import main

main()
