"""Composition: layout + data -> the frozen, channel-neutral Composition. Pure: no I/O."""
