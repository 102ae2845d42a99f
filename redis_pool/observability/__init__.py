"""This process's published snapshot (``monitor``) and the fleet's and server's view (``fleet``)."""
