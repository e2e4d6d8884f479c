"""Training the segmentation network on labelled regions: crops and passes, evaluation and early
stopping (:mod:`~ralis.training.train`), guards against divergence
(:mod:`~ralis.training.divergence`), the check of a model against θ0 within the validation noise
(:mod:`~ralis.training.regression`), the oracle that labels acquired regions
(:mod:`~ralis.training.oracle`) and supervised training of a fresh network with the model file it
writes (:mod:`~ralis.training.supervised`)."""
