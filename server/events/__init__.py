"""Events in: business events about customers, checked, stored and replayable (server.events.publish)."""
