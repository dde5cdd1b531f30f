"""Development tools, never in an image: `kubejudge dev` (the whole judge on this machine), its
local Redis and PostgreSQL and autoscaled local workers, and `kubejudge loadtest`."""
