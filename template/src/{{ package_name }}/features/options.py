"""Limits of the features' options, kept apart so the command line can declare its options
without importing the features themselves."""

DEFAULT_MAX_WORDS = 120
MAX_WORDS_LIMIT = 2_000
