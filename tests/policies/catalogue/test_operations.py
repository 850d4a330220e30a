"""The catalogue knows every operation of every Vipps API spec, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from policies.catalogue.operations import OPERATIONS, UNKNOWN, find, identify
from tests.binaries import running_in_ci

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "vipps-openapi"
# Merchant-side callbacks are called by Vipps, never through the proxy.
NOT_CALLED_BY_MERCHANTS = {"ecom-v2-merchant-callbacks.yaml"}
CALLBACK_PATHS = {"/merchant-dynamic-shipping-callback"}


def spec_operations() -> list[tuple[str, str, str]]:
    """(file, method, full path) for every operation in the shared specs."""
    if not SPECS.is_dir():
        if running_in_ci():
            pytest.fail(f"{SPECS} is missing")
        pytest.skip(f"{SPECS} is not here")
    found = []
    for spec in sorted(SPECS.glob("*.y*ml")):
        if spec.name in NOT_CALLED_BY_MERCHANTS:
            continue
        doc = yaml.safe_load(spec.read_text())
        base = urlparse(doc["servers"][0]["url"]).path.rstrip("/")
        for path, item in doc["paths"].items():
            if path in CALLBACK_PATHS:
                continue
            for method in ("get", "post", "put", "patch", "delete"):
                if method in item:
                    found.append((spec.name, method.upper(), base + path))
    return found


def test_every_spec_operation_is_in_the_catalogue() -> None:
    """Each method and path of each spec maps to an operation of the API the file describes."""
    missing = []
    for name, method, path in spec_operations():
        concrete = re.sub(r"\{[^}]+\}", "Abc-123", path)
        op = identify(method, concrete).operation
        if op is UNKNOWN:
            missing.append(f"{name}: {method} {path}")
    assert missing == []


def test_catalogue_has_no_operation_the_specs_lack() -> None:
    """No invented operations: every catalogue template appears in some spec."""
    spec_paths = {(m, re.sub(r"\{[^}]+\}", "{}", p).lower()) for _, m, p in spec_operations()}
    invented = [
        op.key for op in OPERATIONS
        if (op.method, re.sub(r"\{[^}]+\}", "{}", op.template).lower()) not in spec_paths
    ]  # fmt: skip
    assert invented == []


@pytest.mark.parametrize(
    ("method", "path", "key", "params"),
    [
        ("POST", "/epayment/v1/payments", "epayment.create_payment", {}),
        ("GET", "/epayment/v1/payments/Or-1234", "epayment.get_payment", {"reference": "Or-1234"}),
        ("POST", "/Ecomm/v2/payments/o1/capture", "ecom.capture_payment", {"orderId": "o1"}),
        ("PUT", "/ecomm/v2/payments/o1/cancel", "ecom.cancel_payment", {"orderId": "o1"}),
        ("GET", "/recurring/v3/charges/chr-1", "recurring.get_charge_by_id", {"chargeId": "chr-1"}),
        ("POST", "/order-management/v2/ECOM/receipts/o-1", "order_management.add_receipt",
         {"paymentType": "ECOM", "orderId": "o-1"}),
        ("POST", "/accesstoken/get", "access_token.fetch_access_token", {}),
        ("GET", "/epayment/v1/payments/a%2Fb/", "epayment.get_payment", {"reference": "a/b"}),
    ],
)  # fmt: skip
def test_identify(method: str, path: str, key: str, params: dict[str, str]) -> None:
    """Literal segments match in any case; parameters keep their case and are percent-decoded."""
    match = identify(method, path)
    assert match.operation.key == key
    assert dict(match.params) == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/epayment/v1/payments"),
        ("GET", "/epayment/v1/payments/a/b/c/d"),
        ("GET", "/"),
        ("GET", "//epayment/v1/payments"),
        ("GET", "/epayment/v1/payments//events"),
        ("BREW", "/epayment/v1/payments"),
    ],
)
def test_anything_else_is_unknown(method: str, path: str) -> None:
    """Wrong methods, extra segments and empty parameters are not guessed at."""
    assert identify(method, path).operation is UNKNOWN


def test_operation_names_are_unique_snake_case() -> None:
    """Every api.operation key is unique and snake_case, fit for a metric label."""
    keys = [op.key for op in OPERATIONS]
    assert len(keys) == len(set(keys))
    assert all(re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", k) for k in keys)
    assert find("epayment", "force_approve").template.endswith("/approve")
    with pytest.raises(KeyError):
        find("epayment", "nope")
