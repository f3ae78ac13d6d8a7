"""Retrieval-augmented answers over the user's own documents.

documents (a repository of files) -> chunking (token-aware, overlapping, stable ids) ->
embedders (the model boundary's `embed`, or offline feature hashing, cached by content hash)
-> stores (exact search over numpy, embedded; PostgreSQL + pgvector at scale) -> indexer
(incremental) -> answering (grounded, cited, "not found" below a threshold).

Needs the runtime's `retrieval` extra (numpy, pypdf); the pgvector store the `pgvector` extra.
"""
