"""Receiver of sms57's pushes: POST /callbacks/sms57/{token}."""

from smsrelay.handlers import callback_handler

handler = callback_handler("sms57")
