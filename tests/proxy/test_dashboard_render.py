"""`tests/tools/render_dashboard.py` renders the README's dashboard picture from realistic
traffic: Vipps errors, blocked and repaired requests, and no test fixtures."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.binaries import require_binary
from tests.tools.render_dashboard import dashboard_with_traffic, screenshot

pytestmark = pytest.mark.slow


async def test_rendered_traffic_is_realistic(tmp_path: Path) -> None:
    """The mix gives Vipps errors, blocks and a repair on the board, nothing from the tests
    (no test rule, no script in a body), and Chromium renders it as a 1280x900 PNG."""
    async with dashboard_with_traffic() as (admin, statuses):
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{admin}/dashboard/data") as resp,
        ):
            raw = await resp.read()
        board = orjson.loads(raw)
        kinds = {g["kind"] for g in board["groups"]}
        codes = {g["code"] for g in board["groups"]}
        assert {"vipps_error", "blocked"} <= kinds
        assert {"6080", "81", "amount.not_integer", "phone.format"} <= codes
        assert not any(code.startswith("test.") for code in codes)
        assert b"<" not in raw
        assert {201, 202, 400, 429} <= set(statuses)
        require_binary("chromium")
        output = tmp_path / "dashboard.png"
        await screenshot(f"{admin}/dashboard", output)
    data = output.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (1280, 900)
