"""The files ralis writes and reads: atomic writes (:mod:`~ralis.files.atomic`), folders and their
locks (:mod:`~ralis.files.folders`), the safe tensor format and its header
(:mod:`~ralis.files.safe`, :mod:`~ralis.files.header`, :mod:`~ralis.files.inspect`), the records of
what a file was trained on (:mod:`~ralis.files.record`) and arrays on disk read on demand
(:mod:`~ralis.files.arrays`)."""
