"""Receiver of kxt3's pushes: POST /callbacks/kxt3/{token}."""

from smsrelay.handlers import callback_handler

handler = callback_handler("kxt3")
