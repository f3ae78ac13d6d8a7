"""The model boundary: the client protocol, the offline mock, the provider adapters and the
factory that builds them (the types and errors they speak are `airuntime.types` and
`airuntime.errors`)."""
