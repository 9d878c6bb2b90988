"""loanwatch.stack."""
