"""Optional integrations with other Django libraries and tools, each behind its extra."""
