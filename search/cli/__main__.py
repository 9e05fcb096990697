"""``python -m search.cli``: the launcher starts its workers this way."""

from search.cli import run

run()
