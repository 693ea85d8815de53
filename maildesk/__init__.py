"""maildesk: the e-mail helpdesk that keeps imolocale's dispute policy.

Reading order: policy.py (what we promise), workflow.py (how an event
becomes state and mail), daemon.py (how it runs), then any adapter.
"""
__version__ = "0.1.0"
