"""The command line: a click group whose subcommands load lazily from one module per concern."""
