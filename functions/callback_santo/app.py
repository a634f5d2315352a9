"""Receiver of santo's pushes: POST /callbacks/santo/{token}."""

from smsrelay.handlers import callback_handler

handler = callback_handler("santo")
