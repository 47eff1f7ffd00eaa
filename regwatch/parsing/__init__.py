"""Parsers: one module per log family, grok patterns in patterns/*.grok."""
