"""Receiver of one vendor's pushes: POST/GET /callbacks/{vendor}/{token}.

One code path for every vendor: the template gives each vendor's function its id in CALLBACK_VENDOR.
"""

import os

from smsrelay.handlers import callback_handler

handler = callback_handler(os.environ["CALLBACK_VENDOR"])
