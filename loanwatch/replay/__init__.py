"""loanwatch.replay."""
