"""The suite's sample requests mean what the other hardening tests assume of them."""

from __future__ import annotations

from tests.conftest import Proxy
from tests.hardening.samples import CREATE_PAYMENT, fresh, payment, with_key


async def test_valid_payment_is_forwarded_and_float_amount_is_blocked(proxy: Proxy) -> None:
    """With the default rules the valid sample arrives unchanged and the float-tail one is held."""
    valid = payment(reference=fresh())
    async with proxy.client.post(CREATE_PAYMENT, data=valid, headers=with_key(fresh())) as resp:
        assert resp.status == 200, await resp.text()
        assert "Audit-Proxy-Findings" not in resp.headers
    blocked = payment("49900.0000001", reference=fresh())
    async with proxy.client.post(CREATE_PAYMENT, data=blocked, headers=with_key(fresh())) as resp:
        assert 400 <= resp.status < 500
        assert resp.headers["Audit-Proxy-Findings"]
    (arrived,) = proxy.standin.received
    assert arrived.body == valid
