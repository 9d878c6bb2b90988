"""loanwatch.ledger."""
