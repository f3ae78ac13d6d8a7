"""The model boundary: types, errors, the client protocol, the mock and the provider adapters."""
