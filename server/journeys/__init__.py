"""Journeys: events -> journey steps (durable timers) -> the normal path (server.journeys.stage)."""
