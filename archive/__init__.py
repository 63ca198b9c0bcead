"""The e-archive: S3 object store and the document index. Knows nothing of gRPC or layouts."""
