"""Delivery channels: SMTP e-mail and an HTTP SMS gateway, and the outbox that sends each message once."""
