"""Receiver of intl's pushes: POST /callbacks/intl/{token}."""

from smsrelay.handlers import callback_handler

handler = callback_handler("intl")
