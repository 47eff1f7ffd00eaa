"""Sources: where raw lines come from (files, rotated and gzipped copies, webhooks)."""
