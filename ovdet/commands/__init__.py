"""One module per ``ovdet`` subcommand: ``add_parser(subparsers)`` registers it with its ``run(args)``."""
