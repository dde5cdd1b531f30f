"""HTTP routes, one module per resource; each handler parses, calls a plain module, answers."""
