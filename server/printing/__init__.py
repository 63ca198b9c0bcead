"""Print production: OMR marks, inserts, envelopes, print batches and manifests."""
