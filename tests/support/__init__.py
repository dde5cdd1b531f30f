"""Helpers shared by test tiers (importable as `support`: pytest puts tests/ on sys.path)."""
