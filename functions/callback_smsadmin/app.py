"""Receiver of smsadmin's pushes: POST /callbacks/smsadmin/{token}."""

from smsrelay.handlers import callback_handler

handler = callback_handler("smsadmin")
