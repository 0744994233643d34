"""The local stage's HTTP server (``chalice local``'s) answering without a 40 ms stall.

chalice local's request handler (``chalice.local.ChaliceRequestHandler``, on http.server) sends
a response's headers and then its body, two small writes on a keep-alive connection. With
Nagle's algorithm on, the body waits until the client has acknowledged the headers, and a Linux
client delays that acknowledgement by 40 ms: every request after a connection's first took
44 ms here (``GET /simulations``, with 0.33 ms of the server's CPU; 2026-12-07), so each status
poll of ``sweep submit --wait`` and each ``sweeps.Client`` call waited for it. socketserver's
``disable_nagle_algorithm`` sets TCP_NODELAY on each socket the server accepts, and the body
follows the headers at once.
"""

from __future__ import annotations


def answer_without_delay() -> None:
    """Every connection chalice local accepts from now on sends without Nagle's algorithm.
    Only the local stage calls this (``wiring.build``): a deployed function has no such server,
    and its package no ``chalice.local``."""
    from chalice.local import ChaliceRequestHandler

    ChaliceRequestHandler.disable_nagle_algorithm = True
