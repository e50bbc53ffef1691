"""Code shared by both services: settings, the error format, image decoding, weights.

No Flask routes and no model code live here.
"""
