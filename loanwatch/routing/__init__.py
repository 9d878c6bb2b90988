"""loanwatch.routing."""
