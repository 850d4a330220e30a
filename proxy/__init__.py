"""The I/O side of vipps-audit-proxy: aiohttp server and client, settings, metrics, audit log."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vipps-audit-proxy")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
