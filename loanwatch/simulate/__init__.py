"""loanwatch.simulate."""
