"""One module per `tessera` subcommand; each exposes ``register(subparsers)``."""
