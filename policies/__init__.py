"""Pure policy logic for Vipps API requests: the operation catalogue, the rules and the engine.

Nothing in this package does I/O or imports aiohttp, prometheus_client or the proxy.
"""
