"""Events in: business events about customers, checked, stored, replayable.

Entry point: server.events.publish (EventService, publish_event)."""
