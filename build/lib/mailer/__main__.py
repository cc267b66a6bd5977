"""``python -m mailer`` runs the CLI."""

from mailer.cli import main

# Guarded: worker processes (spawned to build messages) import this module again.
if __name__ == "__main__":
    main()
