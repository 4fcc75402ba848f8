"""`python -m plantwarden` runs the command line."""

from plantwarden.cli.main import main

if __name__ == "__main__":
    main()
