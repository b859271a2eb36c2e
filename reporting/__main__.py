"""``python -m reporting`` runs the ``meetaudit`` command."""

from reporting.cli import main

if __name__ == "__main__":
    main()
