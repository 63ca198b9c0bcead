"""Kanal: multichannel document composition and output management."""
