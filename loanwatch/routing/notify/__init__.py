"""Notifications: SMS gateway, SMTP email, signed webhooks and Alertmanager, behind one worker.

``plan`` turns a routed alert into outbox entries (pure); ``senders`` deliver one message each;
``worker`` drains the outbox with compliance checks, retries, deferrals and dead letters.
"""
