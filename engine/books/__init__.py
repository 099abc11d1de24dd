"""The node's own books: bookkeeper rows, reconciliation verdicts, action outcomes (pure)."""
