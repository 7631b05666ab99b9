"""The incremental build engine: rules → doit tasks keyed by content IDs, a content-addressed store."""
