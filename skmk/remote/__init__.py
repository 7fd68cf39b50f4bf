"""Running skmk models elsewhere: Ray backends, endpoints (Ray Serve) and batch transform.

Nothing here imports Ray at import time; each entry point imports it when it is called.
"""
