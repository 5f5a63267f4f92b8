"""Search: open_clip embeddings, the FAISS index, the query service and reindexing."""
