"""Backtesting: replay one history under several configuration folders and compare the KPIs.

``figures`` accumulates the KPIs (pure), ``runner`` replays a log per folder, ``report`` formats
the side-by-side table and the HTML charts, ``cli`` is ``loanwatch backtest``.
"""
