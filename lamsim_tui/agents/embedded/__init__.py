"""The embedded offline model: catalogue of known weights, their installation, the local server."""
