"""loanwatch.agents."""
