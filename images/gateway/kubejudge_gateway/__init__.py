"""The gateway role: push every verdict to every open connection of its user."""
