"""The Textual chat app: ``qa`` or ``qa chat``. Only this package imports Textual."""
