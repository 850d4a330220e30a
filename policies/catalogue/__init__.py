"""The catalogue: which Vipps operation a request is, and everything known of each operation.

`operations` routes a method and path to an `Operation`; `spec` builds one `OperationSpec` per
operation, once, from the tables of each kind of fact (money, phone, id, URL and header fields,
request bodies, rate limits, body sizes), each written once and read by every rule.
"""
