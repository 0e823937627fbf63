"""Promotion of a candidate model: offline gate, replay, shadow, canary, watch — and rollback.

Pure domain (:mod:`statistics`, :mod:`analysis`, :mod:`transitions`, :mod:`timeline`, :mod:`alarms`),
AWS adapters that take boto3 clients (:mod:`adapters`, :mod:`targets`), and the orchestration the
``promotion_step`` and ``rollback`` functions call (:mod:`service`).
"""
