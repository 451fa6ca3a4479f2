"""One module per provider SDK: what to wrap and how to read its requests, responses and streams."""
