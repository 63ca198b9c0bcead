"""Channel renderers: Composition -> Output (bytes + facts). No I/O, no business decisions."""
