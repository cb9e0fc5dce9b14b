"""The pipeline: from a file, a link or a text to an Analysis (ingest, clean, encode, run the model, detect, decode)."""
