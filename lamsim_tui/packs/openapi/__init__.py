"""Packs generated from OpenAPI specs: the generator (`generate`) and the runtime generated tools import (`runtime`)."""
