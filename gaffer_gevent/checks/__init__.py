"""Readiness and liveness checks: what they are (``spec``), each kind, and the runner.

``spec`` validates a template's ``readiness``/``liveness`` value; ``http``,
``tcp``, ``exec`` and ``notify`` each run one kind; ``runner`` drives them for
one pid with Kubernetes' thresholds and owns their greenlets.
"""
