"""The node's own books: bookkeeper responses as rows, and outcomes of opens, closes and
external changes measured on bookkeeper's per-channel ledger (pure)."""
