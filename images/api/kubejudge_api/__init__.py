"""The api role: Judge0-compatible HTTP API, problems, users, and the demo page."""
