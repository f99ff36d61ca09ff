"""The `srjobs` command."""
