"""Evaluation that is not vibes: datasets of cases with checks, scorers, a concurrent runner,
JSON and Markdown reports, and a gate against an accepted baseline (`make eval`)."""
