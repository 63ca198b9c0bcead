"""Bulk runs: a durable job of many records -> documents, chunk by chunk, on worker processes.

store.py keeps jobs, records and chunks in the index database (JobStore over tables.py,
by concept: database.py, records.py, chunks.py, results.py); worker.py runs one chunk
through the real-time path (compose -> channels -> archive -> index) idempotently; queue.py
hands chunks to local worker processes or to RabbitMQ; runner.py schedules unfinished jobs.
"""
