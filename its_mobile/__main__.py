"""`python -m its_mobile ...` is the same as the `its-mobile` command (torchrun uses this form)."""

from its_mobile.cli import main

if __name__ == "__main__":
    main()
