"""``loanwatch run``: the demo console (worker + live simulator + a live view of alerts).

It only starts, watches and stops local processes it owns; it must never hold loan state,
compute DPD or decide alerts (the worker does), nor stop anything it did not start.
"""
