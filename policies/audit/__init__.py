"""The payment-level audit: state kept across requests for one payment.

The ledger (reserved, captured, refunded), idempotency keys, Vipps' rate limits and polling, in
bounded stores (`state`) or, through `shared_state`'s encoding, in Redis for several replicas.
"""
