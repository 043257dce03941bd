"""`python -m salescast.cli`: the same as the `salescast` command."""

from salescast.cli import main

if __name__ == "__main__":
    main()
