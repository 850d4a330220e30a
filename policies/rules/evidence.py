"""What Vipps documents it rejects: the statements the rules' blocking conditions rest on.

Each entry cites its source as `../shared/vipps-api-facts.md` does (source keys in its §0: [EP]
a spec file with a JSON pointer, [EPDOC faq.md §...] a documentation page, [KB ...] the
knowledge base, [SITE url] a page of developer.vippsmobilepay.com) and says in one line what it
states. Rules declare their conditions beside themselves (`conditions = (...)`) and cite
these; a statement cited by one rule only may be written there.

A schema keyword (`required`, `maxLength`, `pattern`, `enum`) is never cited as evidence on its
own: specs are more strict than Vipps' gateway in many places (facts, preface). Two entries
are not Vipps' word but the proxy's own guard: when the same name is sent twice, the proxy
cannot know which copy Vipps reads, so it cannot vouch for the request it forwards.
"""

from __future__ import annotations

from policies.core.model import Evidence

__all__ = [
    "CHECKOUT_FIELD_REQUIRED",
    "ECOM_INVALID_REQUEST",
    "EPAYMENT_AMOUNT_INVALID",
    "EPAYMENT_AMOUNT_LIMITS",
    "EPAYMENT_AMOUNT_TOO_SMALL",
    "EPAYMENT_INVALID_PHONE",
    "EPAYMENT_INVALID_URL",
    "EPAYMENT_MALFORMED_BODY",
    "EPAYMENT_MISSING_PARAMETER",
    "GUARD_DUPLICATE_HEADER",
    "GUARD_DUPLICATE_KEY",
    "KB_ERROR_81",
    "KB_HTTP_401_BEARER",
    "KB_HTTP_401_SUBSCRIPTION_KEY",
    "KB_HTTP_500",
    "KB_ORDER_ID",
    "KB_URL_VALIDATION",
    "NEWSLETTER_AMOUNTS",
    "RECURRING_IDEMPOTENCY_KEY",
    "RECURRING_VALIDATION_ERROR",
]

EPAYMENT_MALFORMED_BODY = Evidence(
    "[SITE https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors], [EPDOC faq.md]",
    "a request body ePayment cannot read is answered HTTP 400 without an error code",
)
KB_HTTP_500 = Evidence(
    "[KB errors.md §Why do I get HTTP 500]",
    "invalid JSON, an integer MSN, a non-integer amount or wrong field casing (`fallback` for"
    " `fallBack`) fail with HTTP 500",
)
EPAYMENT_MISSING_PARAMETER = Evidence(
    "[EPDOC faq.md §What do all the errors mean] (code 4140 since 2025-02)",
    '"Missing required parameter": ePayment refuses a request without a parameter it requires',
)
CHECKOUT_FIELD_REQUIRED = Evidence(
    "[CODOC checkout-api-faq.md §Errors]",
    'Checkout answers 400 Validation-00001 "The Reference field is required." for a missing field',
)
RECURRING_VALIDATION_ERROR = Evidence(
    "[RC #/components/schemas/ErrorV3], [RCDOC recurring-api-problems.md §validation-error]",
    'Recurring answers 400 validation-error, e.g. `productName`: "must not be empty"',
)
ECOM_INVALID_REQUEST = Evidence(
    "[ECDOC vipps-ecom-api.md §Error codes]",
    "eCom refuses an invalid request with errorGroup InvalidRequest, the field name as error code",
)
EPAYMENT_AMOUNT_INVALID = Evidence(
    "[EPDOC faq.md §What do all the errors mean] (code 4040)",
    '"Amount invalid": amounts must be integers, no decimals; rounding errors are a common cause',
)
NEWSLETTER_AMOUNTS = Evidence(
    "[technical newsletter 2022-11 §Specify amounts in øre without decimals]",
    "amounts that end in .0000001 fail: initiate, capture and refund alike",
)
EPAYMENT_AMOUNT_TOO_SMALL = Evidence(
    "[EPDOC faq.md §What do all the errors mean] (code 6010)",
    '"Amount too small": for NOK the minimum is 100 øre',
)
EPAYMENT_AMOUNT_LIMITS = Evidence(
    "[EP #/components/schemas/Amount/properties/value]",
    "the description states minimums per currency (NOK 100 øre, DKK 1 øre, EUR 1 cent, ...)"
    " and the maximum of 65 000 000 minor units",
)
EPAYMENT_INVALID_PHONE = Evidence(
    "[EPDOC faq.md §What do all the errors mean] (code 4070)",
    '"Invalid phone number": the number must be in MSISDN format',
)
KB_ERROR_81 = Evidence(
    "[KB errors.md §Why do I get HTTP 400], [EC #/components/schemas/CustomerInfo]",
    "eCom answers error 81 (User unknown) for a number it cannot correct, or one not Norwegian",
)
KB_HTTP_401_BEARER = Evidence(
    "[KB errors.md §Why do I get HTTP 401]",
    "use `Authorization: Bearer <access token>`; without it, or without the word Bearer,"
    " you may get 401",
)
KB_HTTP_401_SUBSCRIPTION_KEY = Evidence(
    "[KB errors.md §Why do I get HTTP 401]",
    '401 "Access denied due to missing subscription key. Make sure to include subscription key'
    ' when making requests to an API."',
)
RECURRING_IDEMPOTENCY_KEY = Evidence(
    "[RCDOC recurring-api-guide.md §Idempotency Key header], [RCDOC recurring-api-problems.md]",
    "every v3 POST, PUT, PATCH and DELETE needs an Idempotency-Key of 1-40 characters without"
    " # ? / \\; problem type idempotency-key-header",
)
KB_ORDER_ID = Evidence(
    "[KB orderid.md]",
    "an orderId or reference has at most 50 characters of a-z A-Z 0-9 and -",
)
EPAYMENT_INVALID_URL = Evidence(
    "[EPDOC faq.md §What do all the errors mean] (code 4090)",
    '"Invalid URL": "The parameter http://example.com is invalid"',
)
KB_URL_VALIDATION = Evidence(
    "[KB url-validation.md]",
    "URLs are validated with Apache Commons UrlValidator; http://localhost is rejected"
    " (use http://127.0.0.1 for a test fallBack)",
)
GUARD_DUPLICATE_KEY = Evidence(
    "RFC 8259 §4 (the proxy's own guard)",
    "with duplicate names parsers differ on which value counts, so the proxy cannot tell which"
    " amount Vipps would act on",
)
GUARD_DUPLICATE_HEADER = Evidence(
    "RFC 9110 §5.3 (the proxy's own guard)",
    "a single-value field must not be sent twice; the proxy cannot tell which copy Vipps reads",
)
