"""``python -m dunning`` runs the command line, as the ``dunning`` console script does."""

from dunning.cli import main

if __name__ == "__main__":
    main()
