"""URL fields of the Vipps APIs: which body field of which operation holds a URL, and what it takes.

Field by field from the OpenAPI files (facts §4.5, §5.4, §6.4, §7, §8, §9) and the knowledge
base page on URL validation [KB url-validation.md]. The rules that judge the values are in
`policies.rules.urls`; the catalogue (`policies.catalogue.spec`) gives each operation its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from policies.core.jsonbody import Path

__all__ = ["URL_FIELDS", "Role", "Schemes", "UrlField", "UrlFields"]


class Schemes(Enum):
    """Which schemes a URL field accepts."""

    HTTPS = "an https:// URL"
    HTTPS_OR_APP = "an https:// URL or an app URL such as myapp://"
    WEB = "an absolute http:// or https:// URL"
    WEB_OR_APP = "an absolute http(s):// URL or an app URL such as myapp://"

    @property
    def allows_app(self) -> bool:
        """Whether an app URL (`myapp://...`) is accepted."""
        return self in (Schemes.HTTPS_OR_APP, Schemes.WEB_OR_APP)

    @property
    def allows_http(self) -> bool:
        """Whether plain http:// is accepted."""
        return self in (Schemes.WEB, Schemes.WEB_OR_APP)


class Role(Enum):
    """Who opens the URL: Vipps' servers (a callback) or the user's browser or app (a redirect)."""

    CALLBACK = "callback"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class UrlField:
    """One URL field of a request body.

    `required`: an empty string is a finding (in optional fields it is left alone).
    `localhost_rejected`: Vipps' URL validation is documented to reject a `localhost` host.
    `loopback_http`: plain http on a loopback host is accepted (eCom `fallBack` for testing).
    """

    path: Path
    schemes: Schemes
    role: Role
    required: bool = False
    localhost_rejected: bool = False
    loopback_http: bool = False


@dataclass(frozen=True, slots=True)
class UrlFields:
    """The URL fields of one operation and, if any, the `isApp` flag that turns validation off."""

    fields: tuple[UrlField, ...]
    app_flag: Path | None = None


def _p(dotted: str) -> Path:
    return tuple(dotted.split("."))


_HTTPS, _HTTPS_APP, _WEB, _WEB_APP = (
    Schemes.HTTPS,
    Schemes.HTTPS_OR_APP,
    Schemes.WEB,
    Schemes.WEB_OR_APP,
)
_CB, _RD = Role.CALLBACK, Role.REDIRECT

# [EP #/components/schemas/CreatePaymentRequest/properties/returnUrl] and receiptUrl: "https://
# or a custom URL scheme"; [EP #/components/schemas/DynamicOptions/properties/callbackUrl]:
# "must be valid, see url-validation ... must use HTTPS"; [EP #/components/schemas/CardPassthrough]:
# "Must use https://".
_EPAYMENT = UrlFields(
    (
        UrlField(("returnUrl",), _HTTPS_APP, _RD),
        UrlField(("receiptUrl",), _HTTPS_APP, _RD),
        UrlField(
            _p("shipping.dynamicOptions.callbackUrl"), _HTTPS, _CB, True, localhost_rejected=True
        ),
        UrlField(_p("cardPassthrough.cardCallbackUrl"), _HTTPS, _CB, True),
    )
)
# [EC #/components/schemas/MerchantInfo]: the prefixes "must use HTTPS"; fallBack "HTTPS, or a
# custom URL scheme"; all validated by Apache Commons UrlValidator, which rejects
# http://localhost while http://127.0.0.1 works for a test fallBack [KB url-validation.md].
_ECOM = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackPrefix"), _HTTPS, _CB, True, localhost_rejected=True),
        UrlField(
            _p("merchantInfo.fallBack"),
            _HTTPS_APP,
            _RD,
            True,
            localhost_rejected=True,
            loopback_http=True,
        ),
        UrlField(_p("merchantInfo.consentRemovalPrefix"), _HTTPS, _CB, localhost_rejected=True),
        UrlField(_p("merchantInfo.shippingDetailsPrefix"), _HTTPS, _CB, localhost_rejected=True),
    ),
    app_flag=_p("merchantInfo.isApp"),
)
# [RC #/components/schemas/DraftAgreementV3]: merchantRedirectUrl "HTTPS and deeplinks",
# merchantAgreementUrl "Only HTTPS scheme is allowed". The v2 draft says "Only HTTP or HTTPS"
# for merchantAgreementUrl [RC #/components/schemas/DraftAgreementV2]; the updates (v2 and v3)
# say it requires HTTPS [RC #/components/schemas/PatchAgreementV3].
_RECURRING_DRAFT = UrlFields(
    (
        UrlField(("merchantRedirectUrl",), _HTTPS_APP, _RD, True),
        UrlField(("merchantAgreementUrl",), _HTTPS, _RD, True),
    ),
    app_flag=("isApp",),
)
_RECURRING_DRAFT_V2 = UrlFields(
    (
        UrlField(("merchantRedirectUrl",), _HTTPS_APP, _RD, True),
        UrlField(("merchantAgreementUrl",), _WEB, _RD, True),
    ),
    app_flag=("isApp",),
)
_RECURRING_UPDATE = UrlFields((UrlField(("merchantAgreementUrl",), _HTTPS, _RD),))
# [CO #/components/schemas/PaymentMerchantInfo], [CO #/components/schemas/Logistics]: no scheme
# rule; returnUrl may be an app URL [CODOC checkout-api-guide.md §native mobile application].
_CHECKOUT_V3 = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackUrl"), _WEB, _CB, True),
        UrlField(_p("merchantInfo.returnUrl"), _WEB_APP, _RD, True),
        UrlField(_p("merchantInfo.termsAndConditionsUrl"), _WEB, _RD),
        UrlField(_p("logistics.dynamicOptionsCallback"), _WEB, _CB),
    )
)
_CHECKOUT_V2 = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackPrefix"), _WEB, _CB, True),
        UrlField(_p("merchantInfo.returnUrl"), _WEB_APP, _RD, True),
        UrlField(_p("merchantInfo.termsAndConditionsUrl"), _WEB, _RD),
        UrlField(_p("logistics.dynamicOptionsCallback"), _WEB, _CB),
    )
)
# [WH #/components/schemas/RegisterRequest/properties/url]: "valid, world-reachable ... must
# use HTTPS".
_WEBHOOKS = UrlFields((UrlField(("url",), _HTTPS, _CB, True, localhost_rejected=True),))
# [OM #/components/schemas/Order/properties/orderDetailsUrl], [OM ... AddCategoryRequest]:
# `format: uri`, minLength 1, https examples but no stated scheme rule.
_OM_ORDER = UrlFields((UrlField(("orderDetailsUrl",), _WEB, _RD, True),))
_OM_CATEGORY = UrlFields((UrlField(("url",), _WEB, _RD, True),))

URL_FIELDS: Mapping[str, UrlFields] = MappingProxyType(
    {
        "epayment.create_payment": _EPAYMENT,
        "ecom.initiate_payment": _ECOM,
        "recurring.draft_agreement": _RECURRING_DRAFT,
        "recurring.draft_agreement_v2": _RECURRING_DRAFT_V2,
        "recurring.update_agreement": _RECURRING_UPDATE,
        "recurring.update_agreement_v2": _RECURRING_UPDATE,
        "recurring.patch_agreement_v2": _RECURRING_UPDATE,
        "checkout.create_session": _CHECKOUT_V3,
        "checkout.create_session_v2": _CHECKOUT_V2,
        "webhooks.register_webhook": _WEBHOOKS,
        "order_management.set_category": _OM_ORDER,
        "order_management.put_order_v1": _OM_ORDER,
        "order_management.create_category": _OM_CATEGORY,
    }
)
