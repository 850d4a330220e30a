"""The core every rule stands on: the request value and findings (`model`), the engine that
runs the rules, exact JSON (`jsonbody`), each API's error shape (`errors`) and log redaction.
"""
