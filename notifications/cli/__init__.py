"""The `notifications` management command's subcommands, one module per group (manage.py notifications …)."""
