"""The worker role: take submissions from a pool's queue, judge them in the sandbox."""
