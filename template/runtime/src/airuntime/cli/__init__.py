"""Command-line building blocks a project composes into its CLI (typer)."""
