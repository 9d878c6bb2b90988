"""loanwatch.streams."""
