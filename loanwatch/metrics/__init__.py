"""loanwatch.metrics."""
