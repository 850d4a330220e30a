"""Known JSON request body fields per operation, generated from the Vipps OpenAPI files.

GENERATED from `shared/vipps-openapi` by `python -m tests.tools.generate_request_fields`; do not
edit by hand (a test regenerates it and compares). The package never reads spec files at run time.

`REQUEST_BODIES` maps an operation key to its body: whether the spec requires a body at all,
whether it must be a JSON object, and, per object path (`receipt.orderLines[]`: every item of the
array `receipt.orderLines`), the field names of that object. In a field list, `name!` is a
required field, `name!?` a required field that may be sent as null, a bare `name` an optional one.
Objects whose keys are free (maps such as ePayment `metadata`) have no entry, and operations that
take no JSON body are not in the table. How the specs are read, and where the lenient reading
overrides them, is told in the generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from policies.core.jsonbody import Path


@dataclass(frozen=True, slots=True)
class ObjectFields:
    """The fields of the JSON objects at one path of a request body."""

    known: frozenset[str]
    required: frozenset[str]
    nullable: frozenset[str]

    def case_variants(self, key: str) -> tuple[str, ...]:
        """The known fields `key` equals when letter case is ignored, if `key` is not one itself."""
        if key in self.known:
            return ()
        folded = key.casefold()
        return tuple(sorted(n for n in self.known if n.casefold() == folded))


@dataclass(frozen=True, slots=True)
class RequestBody:
    """What the specs say about one operation's JSON request body.

    `objects` maps an object path, where the step `"*"` is every item of an array (as in
    `policies.core.jsonbody.walk`), to the fields of the objects found there.
    """

    required: bool
    object_root: bool
    objects: Mapping[Path, ObjectFields]


def _parse_path(text: str) -> Path:
    """`receipt.orderLines[]` -> `("receipt", "orderLines", "*")`."""
    steps: list[str | int] = []
    for part in text.split(".") if text else []:
        name = part.replace("[]", "")
        if name:
            steps.append(name)
        steps.extend(["*"] * part.count("[]"))
    return tuple(steps)


def _parse_fields(text: str) -> ObjectFields:
    names = text.split()
    return ObjectFields(
        known=frozenset(n.rstrip("!?") for n in names),
        required=frozenset(n.rstrip("!?") for n in names if "!" in n),
        nullable=frozenset(n.rstrip("!?") for n in names if n.endswith("!?")),
    )


def _body(required: bool, object_root: bool, objects: Mapping[str, str]) -> RequestBody:
    return RequestBody(
        required,
        object_root,
        MappingProxyType({_parse_path(k): _parse_fields(v) for k, v in objects.items()}),
    )


# Each entry: (body required, body must be an object, {object path: field names}).
# Layout is generated; `fmt: off` keeps the formatter from reflowing it.
# fmt: off
_TABLE: Final[dict[str, tuple[bool, bool, dict[str, str]]]] = {
    # epayment-v1.7.0.copy-2025-03.yaml, epayment-v1.vippsas-repo-1.4.1.yml, epayment-v1.yaml
    "epayment.create_payment": (True, True, {
        "": (
            "amount! cardPassthrough customer customerInteraction expiresAt industryData"
            " metadata minimumUserAge paymentDescription paymentMethod! profile qrFormat"
            " receipt receiptUrl reference! returnUrl shipping userFlow!"
        ),
        "amount": "currency! value!",
        "cardPassthrough": (
            "allowedCardTypes! cardCallbackUrl! preferVisaPartOfVisaDankort pspReference!"
            " publicEncryptionKeyId"
        ),
        "customer": "customerToken personalQr phoneNumber",
        "industryData": "airlineData",
        "industryData.airlineData": (
            "agencyInvoiceNumber! airlineCode! airlineDesignatorCode! passengerName!"
            " ticketNumber"
        ),
        "paymentMethod": "blockedSources type",
        "profile": "scope",
        "qrFormat": "format size",
        "receipt": "bottomLine! orderLines!",
        "receipt.bottomLine": (
            "barcode currency!? giftCardAmount paymentSources posId receiptNumber"
            " shippingAmount shippingInfo terminalId tipAmount totalAmount totalDiscount"
            " totalTax"
        ),
        "receipt.bottomLine.barcode": "data!? format!?",
        "receipt.bottomLine.paymentSources": "card cash giftCard voucher",
        "receipt.bottomLine.shippingInfo": (
            "amount!? amountExcludingTax!? taxAmount!? taxPercentage!?"
        ),
        "receipt.orderLines[]": (
            "discount id! isReturn isShipping name! productUrl taxPercentage taxRate"
            " totalAmount! totalAmountExcludingTax! totalTaxAmount! unitInfo"
        ),
        "receipt.orderLines[].unitInfo": "quantity! quantityUnit unitPrice!?",
        "shipping": "dynamicOptions fixedOptions",
        "shipping.dynamicOptions": "callbackAuthorizationToken callbackUrl!",
        "shipping.fixedOptions[]": "brand! isDefault options! priority type!",
        "shipping.fixedOptions[].options[]": (
            "amount! estimatedDelivery id! isDefault meta name! priority"
        ),
        "shipping.fixedOptions[].options[].amount": "currency! value!",
    }),
    # epayment-v1.7.0.copy-2025-03.yaml, epayment-v1.vippsas-repo-1.4.1.yml, epayment-v1.yaml
    "epayment.capture_payment": (False, True, {
        "": "modificationAmount!",
        "modificationAmount": "currency! value!",
    }),
    # epayment-v1.7.0.copy-2025-03.yaml, epayment-v1.vippsas-repo-1.4.1.yml, epayment-v1.yaml
    "epayment.refund_payment": (False, True, {
        "": "modificationAmount!",
        "modificationAmount": "currency! value!",
    }),
    # epayment-v1.7.0.copy-2025-03.yaml, epayment-v1.vippsas-repo-1.4.1.yml, epayment-v1.yaml
    "epayment.force_approve": (False, True, {
        "": "customer token",
        "customer": "customerToken personalQr phoneNumber",
    }),
    # ecom-v2.yaml
    "ecom.initiate_payment": (True, True, {
        "": "customerInfo! merchantInfo! transaction!",
        "customerInfo": "mobileNumber",
        "merchantInfo": (
            "authToken callbackPrefix! consentRemovalPrefix fallBack! isApp"
            " merchantSerialNumber! paymentType shippingDetailsPrefix staticShippingDetails"
        ),
        "merchantInfo.staticShippingDetails[]": (
            "isDefault! priority shippingCost! shippingMethod! shippingMethodId!"
        ),
        "transaction": (
            "additionalData amount! orderId! scope skipLandingPage transactionText!"
            " useExplicitCheckoutFlow"
        ),
        "transaction.additionalData": (
            "agencyInvoiceNumber! airlineCode! airlineDesignatorCode! passengerName!"
            " ticketNumber"
        ),
    }),
    # ecom-v2.yaml
    "ecom.capture_payment": (True, True, {
        "": "merchantInfo transaction",
        "merchantInfo": "merchantSerialNumber!",
        "transaction": "amount transactionText!",
    }),
    # ecom-v2.yaml
    "ecom.cancel_payment": (True, True, {
        "": "merchantInfo! shouldReleaseRemainingFunds transaction!",
        "merchantInfo": "merchantSerialNumber!",
        "transaction": "transactionText!",
    }),
    # ecom-v2.yaml
    "ecom.refund_payment": (True, True, {
        "": "merchantInfo transaction",
        "merchantInfo": "merchantSerialNumber!",
        "transaction": "amount transactionText!",
    }),
    # ecom-v2.yaml
    "ecom.force_approve": (True, True, {
        "": "customerPhoneNumber token",
    }),
    # recurring-v3.yaml
    "recurring.draft_agreement": (True, True, {
        "": (
            "campaign countryCode externalId initialCharge interval! isApp"
            " merchantAgreementUrl! merchantRedirectUrl! phoneNumber pricing!"
            " productDescription productName! scope skipLandingPage"
        ),
        "campaign": "end eventDate eventText interval period price! type!",
        "campaign.interval": "count! unit!",
        "campaign.period": "count! unit!",
        "initialCharge": "amount! description! externalId orderId transactionType!",
        "interval": "count! unit!",
        "pricing": "amount currency! suggestedMaxAmount type",
    }),
    # recurring-v3.yaml
    "recurring.update_agreement": (True, True, {
        "": (
            "externalId interval merchantAgreementUrl pricing productDescription productName"
            " status"
        ),
        "interval": "period type",
        "interval.period": "count! unit!",
        "pricing": "amount suggestedMaxAmount",
    }),
    # recurring-v3.yaml
    "recurring.force_accept_agreement": (True, True, {
        "": "phoneNumber!",
    }),
    # recurring-v3.yaml
    "recurring.create_charge": (True, True, {
        # due: spec-required, not here: UNSCHEDULED charges have none
        # retryDays: spec-required, not here: UNSCHEDULED charges have none
        "": "amount! description! due externalId orderId retryDays transactionType!",
    }),
    # recurring-v3.yaml
    "recurring.capture_charge": (True, True, {
        "": "amount! description!",
    }),
    # recurring-v3.yaml
    "recurring.refund_charge": (True, True, {
        "": "amount! description!",
    }),
    # recurring-v3.yaml
    "recurring.draft_agreement_v2": (True, True, {
        # price: spec-required, not here: not with variableAmount
        "": (
            "campaign currency customerPhoneNumber initialCharge interval intervalCount! isApp"
            " merchantAgreementUrl! merchantRedirectUrl! price productDescription productName!"
            " scope skipLandingPage variableAmount"
        ),
        "campaign": "campaignPrice! end!",
        "initialCharge": "amount! currency description! orderId transactionType!",
        "variableAmount": "suggestedMaxAmount!",
    }),
    # recurring-v3.yaml
    "recurring.update_agreement_v2": (True, True, {
        "": (
            "campaign merchantAgreementUrl price productDescription productName status"
            " suggestedMaxAmount"
        ),
        "campaign": "campaignPrice! end!",
    }),
    # recurring-v3.yaml
    "recurring.patch_agreement_v2": (True, True, {
        "": (
            "campaign merchantAgreementUrl price productDescription productName status"
            " suggestedMaxAmount"
        ),
        "campaign": "campaignPrice! end!",
    }),
    # recurring-v3.yaml
    "recurring.force_accept_agreement_v2": (True, True, {
        "": "customerPhoneNumber!",
    }),
    # recurring-v3.yaml
    "recurring.create_charge_v2": (True, True, {
        "": "amount! currency description! due! orderId retryDays!",
    }),
    # recurring-v3.yaml
    "recurring.refund_charge_v2": (True, True, {
        "": "amount! description!",
    }),
    # checkout-v3.yaml
    "checkout.create_session": (False, True, {
        "": "configuration logistics merchantInfo! prefillCustomer transaction!",
        "configuration": (
            "countries customConsent customerInteraction elements requireUserInfo"
            " showOrderSummary userFlow"
        ),
        "configuration.countries": "supported!",
        "configuration.customConsent": "required! text!",
        "logistics": "dynamicOptionsCallback fixedOptions integrations",
        "logistics.fixedOptions[]": (
            "amount brand customType description id! isDefault! priority! title type"
        ),
        "logistics.fixedOptions[].amount": "currency! value!",
        "logistics.integrations": "helthjem porterbuddy",
        "logistics.integrations.helthjem": "password! shopId! username!",
        "logistics.integrations.porterbuddy": "apiKey! origin! publicToken!",
        "logistics.integrations.porterbuddy.origin": "address! email! name! phoneNumber!",
        "logistics.integrations.porterbuddy.origin.address": (
            "city! country! postalCode! streetAddress!"
        ),
        "merchantInfo": (
            "callbackAuthorizationToken! callbackUrl! returnUrl! termsAndConditionsUrl"
        ),
        "prefillCustomer": (
            "city country email firstName lastName phoneNumber postalCode streetAddress"
        ),
        "transaction": "amount! orderSummary paymentDescription! reference!",
        "transaction.amount": "currency! value!",
        "transaction.orderSummary": "orderBottomLine! orderLines!",
        "transaction.orderSummary.orderBottomLine": (
            "currency! giftCardAmount paymentSources receiptNumber terminalId tipAmount"
        ),
        "transaction.orderSummary.orderBottomLine.paymentSources": "card cash giftCard voucher",
        "transaction.orderSummary.orderLines[]": (
            "discount id! isReturn isShipping name! productUrl taxPercentage! totalAmount!"
            " totalAmountExcludingTax! totalTaxAmount! unitInfo"
        ),
        "transaction.orderSummary.orderLines[].unitInfo": "quantity! quantityUnit! unitPrice!",
    }),
    # checkout-v2.yaml
    "checkout.create_session_v2": (False, True, {
        "": (
            "addressFields! contactFields! customerInteraction logistics merchantInfo!"
            " prefillCustomer requireUserInfo transaction! userFlow"
        ),
        "logistics": "dynamicOptionsCallback fixedOptions integrations",
        "logistics.fixedOptions[]": (
            "amount! brand! description id! isDefault isPickupPoint isPorterbuddy priority"
            " product!"
        ),
        "logistics.fixedOptions[].amount": "currency! value",
        "logistics.integrations": "porterbuddy",
        "logistics.integrations.porterbuddy": "apiKey! origin! publicToken!",
        "logistics.integrations.porterbuddy.origin": "address! email! name! phoneNumber!",
        "logistics.integrations.porterbuddy.origin.address": (
            "city! country! postalCode! streetAddress!"
        ),
        "merchantInfo": (
            "callbackAuthorizationToken! callbackPrefix! returnUrl! termsAndConditionsUrl"
        ),
        "prefillCustomer": (
            "city! country! email! firstName! lastName! phoneNumber! postalCode!"
            " streetAddress!"
        ),
        "transaction": "amount! paymentDescription! reference!",
        "transaction.amount": "currency! value",
    }),
    # order-management-v2.yaml
    "order_management.add_receipt": (False, True, {
        "": "bottomLine! orderLines!",
        "bottomLine": (
            "barcode currency!? giftCardAmount paymentSources posId receiptNumber"
            " shippingAmount shippingInfo terminalId tipAmount totalAmount totalDiscount"
            " totalTax"
        ),
        "bottomLine.barcode": "data!? format!?",
        "bottomLine.paymentSources": "card cash giftCard voucher",
        "bottomLine.shippingInfo": "amount!? amountExcludingTax!? taxAmount!? taxPercentage!?",
        "orderLines[]": (
            "discount id! isReturn isShipping name! productUrl taxPercentage taxRate"
            " totalAmount! totalAmountExcludingTax! totalTaxAmount! unitInfo"
        ),
        "orderLines[].unitInfo": "quantity! quantityUnit unitPrice!?",
    }),
    # order-management-v2.yaml
    "order_management.set_category": (False, True, {
        "": "category!? imageId orderDetailsUrl!",
    }),
    # order-management-v2.yaml
    "order_management.upload_image": (False, True, {
        "": "imageId! src! type!",
    }),
    # order-management-v2.yaml
    "order_management.create_category": (False, True, {
        "": "imageId orderId! paymentType! type!? url!",
    }),
    # order-management-v2.yaml
    "order_management.put_order_v1": (False, True, {
        "": "category!? imageId orderDetailsUrl!",
    }),
    # order-management-v2.yaml
    "order_management.add_receipt_v1": (False, True, {
        "": "bottomLine! orderLines!",
        "bottomLine": (
            "barcode currency!? giftCardAmount paymentSources posId receiptNumber"
            " shippingAmount shippingInfo terminalId tipAmount totalAmount totalDiscount"
            " totalTax"
        ),
        "bottomLine.barcode": "data!? format!?",
        "bottomLine.paymentSources": "card cash giftCard voucher",
        "bottomLine.shippingInfo": "amount!? amountExcludingTax!? taxAmount!? taxPercentage!?",
        "orderLines[]": (
            "discount id! isReturn isShipping name! productUrl taxPercentage taxRate"
            " totalAmount! totalAmountExcludingTax! totalTaxAmount! unitInfo"
        ),
        "orderLines[].unitInfo": "quantity! quantityUnit unitPrice!?",
    }),
    # webhooks-v1.vippsas-repo.yaml, webhooks-v1.yaml
    "webhooks.register_webhook": (True, True, {
        "": "events! url!",
    }),
}
# fmt: on

REQUEST_BODIES: Final[Mapping[str, RequestBody]] = MappingProxyType(
    {key: _body(*entry) for key, entry in _TABLE.items()}
)


def request_body(operation_key: str) -> RequestBody | None:
    """The JSON body of an operation, or None when it takes no JSON body."""
    return REQUEST_BODIES.get(operation_key)
