"""The contract every part of Backdrop shares: vocabularies, value types, value parsers.

Flask-free and torch-free (numpy and Pillow only), so that the services and the clients
speak one language without the clients needing the services' dependencies:

* :mod:`contract.vocab`: the allowed values of every enumerated parameter and the form
  fields of ``POST /v1/matte``;
* :mod:`contract.values`: :class:`~contract.values.Box`, :class:`~contract.values.SizeLimit`,
  :class:`~contract.values.CropMargin` and their limits;
* :mod:`contract.parse`: one parser per kind of value, raising
  :class:`~contract.parse.InvalidValue` (a ``ValueError`` naming the field, with a sentence
  a user can act on). Each side adapts it: the services answer 400 ``invalid_parameter``,
  the command-line clients print an argparse usage error with the sentence.

The trimap encoding (0 / 128 / 255) lives in :mod:`trimap.encoding`.
"""
