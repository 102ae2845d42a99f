"""Sentinel and Cluster aliases, sync and asyncio, built on the instrumented pools."""
